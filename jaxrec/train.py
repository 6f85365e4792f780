"""train_and_evaluate(config, workdir): fine-tune a recommender on a device mesh, keep the best.

The loop is the same for every task (`config.task`: news, or rating/click/multi-label pairs);
a task object (jaxrec/tasks/) brings the data, the model, the loss, the batches and the
evaluation. Reading top to bottom: mesh and checks, data, model created into its shardings,
optimizer, resume, then steps with logging, evaluation, early stopping, checkpoints and
preemption.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tensorflow as tf
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from jaxrec import checkpointing, flops, optim, pretrained, sharding, workdirs
from jaxrec.config_checks import check_config
from jaxrec.convert import hf
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import ConfigError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.tasks import get_task

log = logging.getLogger(__name__)
ENCODER_DIR = "encoder"  # the workdir's copy of the encoder's config and tokenizer
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def save_encoder_files(source: Path, workdir: Path) -> Path:
    """Copies the encoder's config.json and tokenizer files, so prediction needs only workdir."""
    target = workdir / ENCODER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    return target


def make_train_step(graphdef, tx: optax.GradientTransformation, loss, shardings: dict[str, Any]):
    """The jitted (trainable, frozen, opt_state, batch, rng, extra) -> (trainable, opt_state,
    metrics), with the parameters and optimizer state donated.

    `loss(model, micro_batch, extra, rngs)` is the task's. A batch stacks m micro-batches
    [m, ...]; their gradients are averaged before one update, which is the update of the
    whole batch (micro-batches are equal in size).
    """

    def train_step(trainable, frozen, opt_state, batch, rng, extra):
        def loss_fn(trainable, micro, rng):
            model = nnx.merge(graphdef, trainable, frozen)
            return loss(model, micro, extra, nnx.Rngs(dropout=rng))

        grad_fn = jax.value_and_grad(loss_fn)
        m = jax.tree.leaves(batch)[0].shape[0]
        if m == 1:
            value, grads = grad_fn(trainable, jax.tree.map(lambda x: x[0], batch), rng)
        else:

            def accumulate(total, xs):
                micro, i = xs
                step = grad_fn(trainable, micro, jax.random.fold_in(rng, i))
                return jax.tree.map(jnp.add, total, step), None

            zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, trainable))
            total, _ = jax.lax.scan(accumulate, zeros, (batch, jnp.arange(m)))
            value, grads = jax.tree.map(lambda x: x / m, total)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        return (
            trainable,
            opt_state,
            {
                "loss": value,
                "grad_norm": optax.tree.norm(grads),
                "param_norm": optax.tree.norm(trainable),  # non-finite once anything overflowed
            },
        )

    s = shardings
    return jax.jit(
        train_step,
        in_shardings=(
            s["trainable"],
            s["frozen"],
            s["opt_state"],
            s["batch"],
            s["replicated"],
            s["replicated"],
        ),
        out_shardings=(s["trainable"], s["opt_state"], s["replicated"]),
        donate_argnums=(0, 2),
    )


def validate(config: ml_collections.ConfigDict, mesh, sharded_sizes: tuple[str, ...]) -> None:
    """Batch shapes that the mesh can split, checked before anything is read or compiled."""
    shards = sharding.batch_shards(mesh)
    batch, micro = int(config.train.batch_size), int(config.train.micro_batches)
    if micro <= 0 or batch <= 0 or batch % micro or (batch // micro) % shards:
        raise ConfigError(
            f"train.batch_size ({batch}) must be a positive multiple of train.micro_batches "
            f"({micro}) times the {shards} batch shards of mesh {dict(mesh.shape)}"
        )
    for key in sharded_sizes:
        section, name = key.split(".")
        value = config[section][name]
        if value <= 0 or value % shards:
            raise ConfigError(
                f"{key} ({value}) must be a positive multiple of the {shards} batch shards "
                f"of mesh {dict(mesh.shape)}"
            )


def create_model(
    config: ml_collections.ConfigDict, bert_config: BertConfig, folder: Path, mesh, build
) -> nnx.Module:
    """The task's model (`build(bert)`), created directly into its shardings, with the
    pretrained encoder weights.

    Random initialization runs jitted with sharded outputs, and each pretrained tensor goes
    straight from host memory to the devices that hold its parts: no parameter is ever whole
    on one device.
    """
    if config.model.dropout is not None:
        rate = float(config.model.dropout)
        bert_config = dataclasses.replace(
            bert_config, hidden_dropout_prob=rate, attention_probs_dropout_prob=rate
        )
    dtype = jnp.dtype(config.model.dtype)

    def create() -> nnx.Module:
        bert = BertModel(
            bert_config, dtype=dtype, remat=config.model.remat, rngs=nnx.Rngs(config.seed)
        )
        return build(bert)

    graphdef, abstract = nnx.split(nnx.eval_shape(create))
    shardings = sharding.state_shardings(abstract, mesh, config.mesh.rules)
    state = jax.jit(lambda: nnx.state(create()), out_shardings=shardings)()
    model = nnx.merge(graphdef, state)
    hf.load_into(model.bert, hf.read_tensors(folder), source=str(folder))
    log.info(
        "loaded %s (%d layers, hidden %d)",
        folder,
        bert_config.num_hidden_layers,
        bert_config.hidden_size,
    )
    return model


def place_optimizer(config, trainable: nnx.State, frozen: nnx.State, mesh, num_steps: int):
    """(tx, lr, opt_state, shardings): AdamW whose state lives where its parameters do."""
    lr = optim.schedule(config.train, num_steps)
    tx = optim.optimizer(config.train, lr, trainable)
    rules = config.mesh.rules
    replicated = NamedSharding(mesh, P())
    shardings = {
        "trainable": sharding.state_shardings(trainable, mesh, rules),
        "frozen": sharding.state_shardings(frozen, mesh, rules),
        "batch": NamedSharding(mesh, P(None, sharding.BATCH_AXES)),
        "replicated": replicated,
    }
    shardings["opt_state"] = optax.tree_map_params(
        tx,
        lambda _, s: s,
        jax.eval_shape(tx.init, trainable),
        shardings["trainable"],
        transform_non_params=lambda _: replicated,
    )
    opt_state = jax.jit(tx.init, out_shardings=shardings["opt_state"])(trainable)
    return tx, lr, opt_state, shardings


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir`; returns (and writes to metrics.json) the final results."""
    check_config(config)  # every value, before anything is read, written or compiled
    mesh = sharding.make_mesh(config.mesh.shape)
    task_type = get_task(config.task)
    validate(config, mesh, task_type.SHARDED_SIZES)
    # Checked, locked and given config.json before anything else is written (workdirs.py).
    with workdirs.claim(config, workdir) as path, sharding.activate(mesh, config.mesh.rules):
        return _train_and_evaluate(config, path, mesh, task_type)


def _train_and_evaluate(config, workdir: Path, mesh, task_type) -> dict[str, Any]:
    start = time.time()
    lead = jax.process_index() == 0  # only process 0 writes files other than checkpoints

    # Data: every text tokenized once; the pipeline moves integers.
    folder = pretrained.resolve(config.model.init_from)
    bert_config = hf.read_config(folder)
    if lead:
        save_encoder_files(folder, workdir)
    report = ReadReport()
    feed = sharding.Feed(mesh)
    task = task_type(
        config,
        tokenizer=TextTokenizer(folder, bert_config.vocab_size),
        cache_dir=config.data.cache_dir or workdir / "cache",
        feed=feed,
        report=report,
    )
    report.log(log)

    # Model and optimizer, placed by the mesh and rule table; only the configured scope
    # of the encoder is trained.
    model = create_model(config, bert_config, folder, mesh, task.build)
    is_trainable = task.trainable_filter(bert_config.num_hidden_layers)
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    num_steps = int(config.train.num_steps)
    tx, lr, opt_state, shardings = place_optimizer(config, trainable, frozen, mesh, num_steps)
    sharding.overview(
        nnx.merge_state(trainable, frozen),
        nnx.merge_state(shardings["trainable"], shardings["frozen"]),
        mesh,
        config.mesh.max_replicated_share,
    )
    log.info(
        "parameters: %s trainable of %s", _count(trainable), _count(trainable) + _count(frozen)
    )

    # Resume: the workdir's own latest readable checkpoint, else the pretrained weights.
    metric_name = config.train.early_stopping_metric  # one of the task's (check_config)
    higher = task.higher_is_better(metric_name)
    ckpt = checkpointing.manager(
        workdir, metric=metric_name, higher_is_better=higher, keep=config.train.keep_checkpoints
    )
    progress = {
        "step": 0,
        "best_value": None,
        "best_step": 0,
        "best_metrics": None,
        "evals_since_best": 0,
        "done": False,
    }
    restored = checkpointing.restore_latest(
        ckpt, nnx.merge_state(trainable, frozen).filter(nnx.Param), opt_state
    )
    if restored:
        step, params, opt_state, progress = restored
        model = nnx.merge(graphdef, trainable, frozen)
        nnx.update(model, params)
        _, trainable, frozen = nnx.split(model, is_trainable, ...)
        log.info("resuming from %s/%d", ckpt.directory, step)

    task.start(graphdef, (trainable, frozen))
    train_step = make_train_step(graphdef, tx, task.loss, shardings)
    batches = task.batches(progress["step"])
    writer = (
        tf.summary.create_file_writer(str(workdir / "tensorboard"))
        if lead
        else tf.summary.create_noop_writer()
    )
    batch_size = int(config.train.batch_size)
    log.info(
        "%d training samples per epoch; %d steps of %d (%.2f epochs)",
        task.samples_per_epoch,
        num_steps,
        batch_size,
        num_steps * batch_size / max(task.samples_per_epoch, 1),
    )

    def better(value: float, best: float) -> bool:
        return value > best if higher else value < best

    def run_eval(step: int) -> dict[str, float]:
        result = task.evaluate((trainable, frozen))
        with writer.as_default(step=step):
            for k in task.metric_names:
                tf.summary.scalar(f"eval/{k}", result[k])
        return result

    def save(step: int, result: dict[str, float] | None = None) -> None:
        checkpointing.save(
            ckpt,
            step,
            params=nnx.merge_state(trainable, frozen).filter(nnx.Param),
            opt_state=opt_state,
            progress=dict(progress, step=step),
            metrics={k: result[k] for k in task.metric_names} if result else None,
        )

    rng = jax.random.key(config.seed)
    pending: list[tuple[int, dict]] = []
    step = progress["step"]
    first = step + 1
    tick, ticked_step, interval_flops = time.time(), progress["step"], 0.0
    peak = flops.device_peak()  # None on CPUs: throughput only
    # One process: SIGTERM sets a flag. Many: jax's preemption service catches it and
    # `reached_preemption` agrees on one step for all processes.
    preempted = _SignalFlag(signal.SIGTERM, install=jax.process_count() == 1)
    say = tqdm.write if lead else log.debug
    bar = tqdm(
        range(first, num_steps + 1),
        desc="train",
        unit="step",
        dynamic_ncols=True,
        initial=first - 1,
        total=num_steps,
        disable=not lead,
    )
    try:
        for step in [] if progress["done"] else bar:
            local = next(batches)
            interval_flops += task.step_flops(local)
            batch = feed.put_local(local, axis=1)
            trainable, opt_state, step_metrics = train_step(
                trainable, frozen, opt_state, batch, jax.random.fold_in(rng, step), task.extra
            )
            pending.append((step, step_metrics))
            last = step == num_steps
            if step % config.train.log_every == 0 or last:
                elapsed = time.time() - tick
                speed = {
                    "samples_per_second": (step - ticked_step) * batch_size / elapsed,
                    "tflops_per_second": interval_flops / elapsed / 1e12,
                }
                if peak:
                    speed["mfu"] = interval_flops / elapsed / (peak * jax.device_count())
                tick, ticked_step, interval_flops = time.time(), step, 0.0
                loss = _log_train(writer, pending, lr, speed)
                pending = []
                bar.set_postfix(
                    loss=f"{loss:.4f}",
                    samples_s=f"{speed['samples_per_second']:.1f}",
                    **({"mfu": f"{speed['mfu']:.1%}"} if peak else {}),
                )
            evaluating = step % config.train.eval_every == 0 or last
            stopping = bool(preempted) or ckpt.reached_preemption(step)
            saving = evaluating or stopping or step % config.train.save_every == 0
            if saving:
                _assert_finite(pending)  # never evaluate or save a diverged model
            result = None
            if evaluating:
                result = run_eval(step)
                say(f"step {step}: dev " + _fmt(result, task.metric_names))
                if progress["best_value"] is None or better(
                    result[metric_name], progress["best_value"]
                ):
                    progress.update(
                        best_value=result[metric_name],
                        best_step=step,
                        best_metrics=result,
                        evals_since_best=0,
                    )
                else:
                    progress["evals_since_best"] += 1
                patience = config.train.patience
                if last or (patience and progress["evals_since_best"] >= patience):
                    progress["done"] = True
            if saving:
                save(step, result)
            if progress["done"]:
                if not last:
                    say(
                        f"early stop at step {step}: no better dev {metric_name} in "
                        f"{progress['evals_since_best']} evaluations "
                        f"(best at step {progress['best_step']})"
                    )
                break
            if stopping:
                ckpt.wait_until_finished()
                raise Preempted(step, ckpt.directory)
    finally:
        bar.close()
        preempted.restore()
        ckpt.wait_until_finished()  # a save in flight completes; the last good one stays
        ckpt.close()
        writer.flush()

    results = {
        "dev": progress["best_metrics"],
        "best_step": progress["best_step"],
        "last_step": step,
        **task.summary(),
        "read_report": report.as_dict(),
        "rows_read": report.rows_dict(),
        "seconds": round(time.time() - start, 1),
    }
    if lead:
        (workdir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


class Preempted(Exception):
    """The run was asked to stop (SIGTERM or a maintenance event) and saved its step."""

    exit_code = 143  # 128 + SIGTERM: what schedulers see from a job ended by SIGTERM

    def __init__(self, step: int, directory) -> None:
        super().__init__(f"preempted at step {step}: saved {directory}/{step}; rerun to resume")


class _SignalFlag:
    """True once `signum` has arrived; the training loop saves at the next step boundary."""

    def __init__(self, signum: int, install: bool = True) -> None:
        self.signum, self.seen, self.previous = signum, False, None
        if install:
            # Outside the main thread signals stay with the caller.
            with contextlib.suppress(ValueError):
                self.previous = signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.seen = True

    def __bool__(self) -> bool:
        return self.seen

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)


def _assert_finite(pending) -> list[dict]:
    """Fetches buffered step metrics (one host transfer); stops at the first non-finite one."""
    fetched = jax.device_get([m for _, m in pending])
    for (step, _), m in zip(pending, fetched, strict=True):
        if not (np.isfinite(m["loss"]) and np.isfinite(m["param_norm"])):
            raise FloatingPointError(
                f"non-finite training loss ({m['loss']}) or parameters at step {step}; the "
                "last good checkpoint is kept. Lower train.learning_rate or check the data."
            )
    return fetched


def _log_train(writer, pending, lr, speed: dict[str, float]) -> float:
    """Checks and writes the buffered step metrics; returns the last loss."""
    fetched = _assert_finite(pending)
    with writer.as_default():
        for (step, _), m in zip(pending, fetched, strict=True):
            tf.summary.scalar("train/loss", m["loss"], step=step)
            tf.summary.scalar("train/grad_norm", m["grad_norm"], step=step)
            tf.summary.scalar("train/learning_rate", float(lr(step)), step=step)
        for name, value in speed.items():
            tf.summary.scalar(f"train/{name}", value, step=pending[-1][0])
    return float(fetched[-1]["loss"])


def _count(state: nnx.State) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))


def _fmt(result: dict[str, float], names) -> str:
    return " ".join(f"{k}={result[k]:.4f}" for k in names)
