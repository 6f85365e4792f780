"""train_and_evaluate(config, workdir): fine-tune a recommender on a device mesh, keep the best.

The loop is the same for every task (`config.task`: news, or rating/click/multi-label pairs);
a Task (jaxrec/tasks/base.py) brings the data, the model, the loss, the batches and the
evaluation. Reading top to bottom: checks and mesh, data, model created into its shardings,
resume, then each training phase (jaxrec/phases.py: its scope and optimizer, the steps with
logging, validation, early stopping, checkpoints and preemption; the next phase starts from
the best parameters so far), then the test split scored once with the best checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
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

from jaxrec import checkpointing, flops, optim, phases, pretrained, sharding, workdirs
from jaxrec.config_checks import check_batch_split, check_config
from jaxrec.convert import hf
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.preemption import Preempted, SignalFlag
from jaxrec.tasks import get_task
from jaxrec.tasks.base import RECORD_FILE, Task, TaskEnv

log = logging.getLogger(__name__)


def make_train_step(graphdef, tx: optax.GradientTransformation, loss, shardings: dict[str, Any]):
    """The jitted (trainable, frozen, opt_state, carry, batch, rng, extra) -> (trainable,
    opt_state, carry, metrics), with the parameters, optimizer state and carry donated.

    `loss(model, micro_batch, extra, carry, rngs) -> (value, carry)` is the task's
    (`Task.step_loss`); the carry (a task's state besides the parameters, or None) goes
    through the micro-batches in order. A batch stacks m micro-batches [m, ...]; their
    gradients are averaged before one update, which is the update of the whole batch
    (micro-batches are equal in size).
    """

    def train_step(trainable, frozen, opt_state, carry, batch, rng, extra):
        def loss_fn(trainable, micro, carry, rng):
            model = nnx.merge(graphdef, trainable, frozen)
            return loss(model, micro, extra, carry, nnx.Rngs(dropout=rng))

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        m = jax.tree.leaves(batch)[0].shape[0]
        if m == 1:
            micro = jax.tree.map(lambda x: x[0], batch)
            (value, carry), grads = grad_fn(trainable, micro, carry, rng)
        else:

            def accumulate(state, xs):
                total, carry = state
                micro, i = xs
                (value, carry), grads = grad_fn(trainable, micro, carry, jax.random.fold_in(rng, i))
                return (jax.tree.map(jnp.add, total, (value, grads)), carry), None

            zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, trainable))
            (total, carry), _ = jax.lax.scan(accumulate, (zeros, carry), (batch, jnp.arange(m)))
            value, grads = jax.tree.map(lambda x: x / m, total)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        return (
            trainable,
            opt_state,
            carry,
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
            s["replicated"],
            s["batch"],
            s["replicated"],
            s.get("extra", s["replicated"]),  # the caches keep their own placement
        ),
        out_shardings=(s["trainable"], s["opt_state"], s["replicated"], s["replicated"]),
        donate_argnums=(0, 2, 3),
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


def place_optimizer(
    config, trainable: nnx.State, frozen: nnx.State, mesh, num_steps: int, peak_lr=None
):
    """(tx, lr, opt_state, shardings): AdamW whose state lives where its parameters do, its
    learning rate warming up to `peak_lr` (train.learning_rate) and decaying over `num_steps`."""
    lr = optim.schedule(config.train, num_steps, peak_lr)
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


@dataclasses.dataclass
class EarlyStopping:
    """The validation record: the best metrics so far, and when to stop.

    Saved in every checkpoint (its `progress`), so a resumed run stops where an
    uninterrupted one would.
    """

    metric: str
    higher_is_better: bool
    patience: int  # evaluations without improvement before stopping; 0: never
    best_value: float | None = None
    best_step: int = 0
    best_metrics: dict[str, float] | None = None
    evals_since_best: int = 0
    done: bool = False

    def update(self, step: int, result: dict[str, float], last: bool) -> None:
        value = result[self.metric]
        better = self.best_value is None or (
            value > self.best_value if self.higher_is_better else value < self.best_value
        )
        if better:
            self.best_value, self.best_step, self.best_metrics = value, step, result
            self.evals_since_best = 0
        else:
            self.evals_since_best += 1
        self.done = last or bool(self.patience and self.evals_since_best >= self.patience)

    def progress(self, step: int) -> dict[str, Any]:
        fields = ("best_value", "best_step", "best_metrics", "evals_since_best", "done")
        return {"step": step} | {k: getattr(self, k) for k in fields}

    def restore(self, progress: dict[str, Any]) -> int:
        """Takes back a checkpoint's record; returns its step."""
        for key in ("best_value", "best_step", "best_metrics", "evals_since_best", "done"):
            setattr(self, key, progress[key])
        return int(progress["step"])

    def next_phase(self) -> None:
        """A new training phase: the best so far stays, the patience starts again."""
        self.evals_since_best, self.done = 0, False


@dataclasses.dataclass
class Placed:
    """One phase's model: trained and frozen parameters, placed, and the phase's optimizer."""

    phase: phases.Phase
    is_trainable: Any
    graphdef: nnx.GraphDef
    states: tuple[nnx.State, nnx.State]
    tx: optax.GradientTransformation
    lr: optax.Schedule
    opt_state: Any
    shardings: dict[str, Any]

    @property
    def params(self) -> nnx.State:
        return nnx.merge_state(*self.states).filter(nnx.Param)

    def with_params(self, params: nnx.State) -> tuple[nnx.State, nnx.State]:
        """(trainable, frozen) holding `params` in place of this placement's parameters."""
        return _split_params(self.graphdef, self.states, params, self.is_trainable)


def place_phase(
    config, task: Task, model: nnx.Module, phase: phases.Phase, mesh, num_layers: int
) -> Placed:
    """Splits `model` into what `phase` trains of its `num_layers` encoder layers and what it
    freezes, with a fresh optimizer."""
    task.begin_phase(phase.trainable_layers)
    is_trainable = task.trainable_filter(num_layers)
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    placed = place_optimizer(config, trainable, frozen, mesh, phase.num_steps, phase.learning_rate)
    return Placed(phase, is_trainable, graphdef, (trainable, frozen), *placed)


class Throughput:
    """Samples/s, model TFLOP/s and, on known accelerators, MFU since the last reading."""

    def __init__(self, batch_size: int, step: int) -> None:
        self.batch_size, self.peak = batch_size, flops.device_peak()  # None on CPUs
        self.tick, self.step, self.flops = time.time(), step, 0.0

    def add(self, step_flops: float) -> None:
        self.flops += step_flops

    def read(self, step: int) -> dict[str, float]:
        elapsed = time.time() - self.tick
        speed = {
            "samples_per_second": (step - self.step) * self.batch_size / elapsed,
            "tflops_per_second": self.flops / elapsed / 1e12,
        }
        if self.peak:
            speed["mfu"] = self.flops / elapsed / (self.peak * jax.device_count())
        self.tick, self.step, self.flops = time.time(), step, 0.0
        return speed


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir`; returns (and writes to metrics.json) the final results."""
    check_config(config)  # every value, before anything is read, written or compiled
    mesh = sharding.make_mesh(config.mesh.shape)
    task_type = get_task(config.task)
    check_batch_split(
        config, shards=sharding.batch_shards(mesh), sharded_sizes=task_type.sharded_sizes
    )
    # Checked, locked and given config.json before anything else is written (workdirs.py).
    with workdirs.claim(config, workdir) as path, sharding.activate(mesh, config.mesh.rules):
        return _train_and_evaluate(config, path, mesh, task_type)


def _train_and_evaluate(config, workdir: Path, mesh, task_type) -> dict[str, Any]:
    start = time.time()
    lead = jax.process_index() == 0  # only process 0 writes files other than checkpoints
    task, folder, bert_config = _read_task(config, workdir, mesh, task_type, lead)

    # The model, placed by the mesh and rule table; each phase trains its scope of it.
    model = create_model(config, bert_config, folder, mesh, task.build)
    plan = phases.plan(config.train, config.model, task.samples_per_epoch)
    layers = bert_config.num_hidden_layers
    placed = place_phase(config, task, model, plan[0], mesh, layers)
    trainable, frozen = placed.states
    sharding.overview(
        nnx.merge_state(trainable, frozen),
        nnx.merge_state(placed.shardings["trainable"], placed.shardings["frozen"]),
        mesh,
        config.mesh.max_replicated_share,
    )
    log.info(
        "parameters: %s trainable of %s", _count(trainable), _count(trainable) + _count(frozen)
    )

    # Resume: the workdir's own latest readable checkpoint, else the pretrained weights. Its
    # optimizer state is that of the phase its step belongs to.
    t = config.train
    stopper = EarlyStopping(
        t.early_stopping_metric, task.higher_is_better(t.early_stopping_metric), t.patience
    )
    ckpt = checkpointing.manager(
        workdir,
        metric=stopper.metric,
        higher_is_better=stopper.higher_is_better,
        keep=t.keep_checkpoints,
    )

    def opt_state_at(step: int):
        nonlocal placed
        phase = phases.phase_at(plan, step)
        if phase != placed.phase:
            model = nnx.merge(placed.graphdef, *placed.states)
            placed = place_phase(config, task, model, phase, mesh, layers)
        return placed.opt_state

    step = 0
    restored = checkpointing.restore_latest(ckpt, placed.params, opt_state_at)
    if restored:
        _, params, opt_state, progress = restored
        step = stopper.restore(progress)
        placed.states, placed.opt_state = placed.with_params(params), opt_state
        log.info("resuming from %s/%d", ckpt.directory, step)

    writer = (
        tf.summary.create_file_writer(str(workdir / "tensorboard"))
        if lead
        else tf.summary.create_noop_writer()
    )
    try:
        while True:
            phase = placed.phase
            if not stopper.done and step < phase.last_step:
                log.info(phases.describe(phase, len(plan), t.batch_size, task.samples_per_epoch))
                task.start(placed.graphdef, placed.states)
                if restored and task.carry is not None:  # the resumed step's carry
                    task.carry = checkpointing.restore_carry(ckpt, step, task.carry)
                restored = None
                step, placed.states = _loop(
                    config, task, placed, ckpt, stopper, writer, step, lead, len(plan)
                )
            if phase.index + 1 == len(plan):
                break
            # The next phase starts from the best parameters so far, at its own first step.
            ckpt.wait_until_finished()
            placed.states = _best_states(workdir, placed, stopper.best_step, step)
            model = nnx.merge(placed.graphdef, *placed.states)
            placed = place_phase(config, task, model, plan[phase.index + 1], mesh, layers)
            stopper.next_phase()
            step = placed.phase.first_step - 1
    finally:
        ckpt.wait_until_finished()  # a save in flight completes; the last good one stays
        ckpt.close()
        writer.flush()

    test = None
    if task.has_test_labels:  # scored once, by the checkpoint chosen on validation
        test = task.test(_best_states(workdir, placed, stopper.best_step, step))
    results = {
        "dev": stopper.best_metrics,
        "test": test,
        "best_step": stopper.best_step,
        "last_step": step,
        "baseline": task.baseline(),
        "baseline_name": task.baseline_name,
        **task.summary(),
        "read_report": task.env.report.as_dict(),
        "rows_read": task.env.report.rows_dict(),
        "seconds": round(time.time() - start, 1),
    }
    if lead:
        (workdir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _read_task(config, workdir: Path, mesh, task_type, lead: bool):
    """The task with its data read (every text tokenized once), and the pretrained encoder's
    folder and config. Process 0 keeps what inference needs in the workdir."""
    folder = pretrained.resolve(config.model.init_from)
    bert_config = hf.read_config(folder)
    env = TaskEnv(
        tokenizer=TextTokenizer(folder, bert_config.vocab_size),
        cache_dir=Path(config.data.cache_dir or workdir / "cache"),
        feed=sharding.Feed(mesh),
        report=ReadReport(),
    )
    task: Task = task_type(config, env)
    task.read()
    env.report.log(log)
    if lead:
        pretrained.save_encoder_files(folder, workdir)
        (workdir / RECORD_FILE).write_text(json.dumps(task.record()) + "\n")
    return task, folder, bert_config


def _loop(
    config, task: Task, placed: Placed, ckpt, stopper, writer, step: int, lead: bool, count: int
):
    """Steps from `step` to the end of the phase or early stopping; returns (step, states)."""
    t, phase, (trainable, frozen) = config.train, placed.phase, placed.states
    opt_state, lr = placed.opt_state, placed.lr
    # The task's caches stay where `start` put them (split by rows over the batch axes).
    shardings = placed.shardings | {"extra": jax.tree.map(lambda x: x.sharding, task.extra)}
    train_step = make_train_step(placed.graphdef, placed.tx, task.step_loss, shardings)
    batches = task.batches(step)
    carry = task.carry
    rng = jax.random.key(config.seed)
    meter = Throughput(int(t.batch_size), step)
    pending: list[tuple[int, dict]] = []  # step metrics not yet fetched from the devices
    # One process: SIGTERM sets a flag. Many: jax's preemption service catches it and
    # `reached_preemption` agrees on one step for all processes.
    preempted = SignalFlag(install=jax.process_count() == 1)
    say = tqdm.write if lead else log.debug
    bar = tqdm(
        range(step + 1, phase.last_step + 1), unit="step", dynamic_ncols=True,
        desc="train" if count == 1 else f"phase {phase.index + 1}/{count}",
        initial=step - phase.first_step + 1, total=phase.num_steps, disable=not lead,
    )  # fmt: skip
    try:
        for step in bar:
            local = next(batches)
            meter.add(task.step_flops(local))
            batch = task.env.feed.put_local(local, axis=1)
            trainable, opt_state, carry, step_metrics = train_step(
                trainable,
                frozen,
                opt_state,
                carry,
                batch,
                jax.random.fold_in(rng, step),
                task.extra,
            )
            pending.append((step, step_metrics))
            last = step == phase.last_step
            if step % t.log_every == 0 or last:
                speed = meter.read(step)
                loss = _log_train(writer, pending, lambda s: lr(s - phase.first_step), speed)
                pending = []
                postfix = {"loss": f"{loss:.4f}", "samples_s": f"{speed['samples_per_second']:.1f}"}
                bar.set_postfix(
                    postfix | ({"mfu": f"{speed['mfu']:.1%}"} if "mfu" in speed else {})
                )
            evaluating = step % t.eval_every == 0 or last
            stopping = bool(preempted) or ckpt.reached_preemption(step)
            result = None
            if evaluating or stopping or step % t.save_every == 0:
                _assert_finite(pending)  # never evaluate or save a diverged model
                if evaluating:
                    result = task.evaluate((trainable, frozen))
                    _log_eval(writer, step, result, task.metric_names)
                    say(f"step {step}: dev " + _fmt(result, task.metric_names))
                    stopper.update(step, result, last)
                checkpointing.save(
                    ckpt,
                    step,
                    params=nnx.merge_state(trainable, frozen).filter(nnx.Param),
                    opt_state=opt_state,
                    progress=stopper.progress(step),
                    metrics={k: result[k] for k in task.metric_names} if result else None,
                    carry=carry,
                )
            if stopper.done:
                if not last:
                    say(
                        f"early stop at step {step}: no better dev {stopper.metric} in "
                        f"{stopper.evals_since_best} evaluations (best at step {stopper.best_step})"
                    )
                break
            if stopping:
                ckpt.wait_until_finished()
                raise Preempted(step, ckpt.directory)
    finally:
        bar.close()
        preempted.restore()
    placed.opt_state = opt_state
    return step, (trainable, frozen)


def _best_states(workdir: Path, placed: Placed, best_step: int, step: int):
    """The placement's (trainable, frozen) with the best checkpoint's parameters."""
    if best_step == step:
        return placed.states
    best, _ = checkpointing.restore_params(workdir, placed.params, best_step)
    return placed.with_params(best)


def _split_params(graphdef, states, params: nnx.State, is_trainable):
    """(trainable, frozen) holding `params` in place of the parameters of `states`."""
    model = nnx.merge(graphdef, *states)
    nnx.update(model, params)
    _, trainable, frozen = nnx.split(model, is_trainable, ...)
    return trainable, frozen


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


def _log_eval(writer, step: int, result: dict[str, float], names) -> None:
    with writer.as_default(step=step):
        for k in names:
            tf.summary.scalar(f"eval/{k}", result[k])


def _count(state: nnx.State) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))


def _fmt(result: dict[str, float], names) -> str:
    return " ".join(f"{k}={result[k]:.4f}" for k in names)
