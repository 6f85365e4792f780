"""train_and_evaluate(config, workdir): fine-tune the news recommender, evaluate, keep the best."""

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

from jaxrec import checkpointing, evaluate, metrics, optim, pretrained, sharding
from jaxrec.convert import hf
from jaxrec.data import mind
from jaxrec.data.news_data import NewsSplit, load_split
from jaxrec.data.pipeline import count_train_samples, train_batches
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import ConfigError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.news import NewsRecommender

log = logging.getLogger(__name__)
ENCODER_DIR = "encoder"  # the workdir's copy of the encoder's config and tokenizer
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def build_model(config: ml_collections.ConfigDict, bert: BertModel) -> NewsRecommender:
    return NewsRecommender(
        bert,
        pooling=config.model.pooling,
        user_encoder=config.model.user_encoder,
        attention_hidden=config.model.attention_hidden,
        user_heads=config.model.user_heads,
        dtype=jnp.dtype(config.model.dtype),
        rngs=nnx.Rngs(config.seed),
    )


def save_encoder_files(source: Path, workdir: Path) -> Path:
    """Copies the encoder's config.json and tokenizer files, so prediction needs only workdir."""
    target = workdir / ENCODER_DIR
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    return target


def frozen_bottom_layers(model: ml_collections.ConfigDict, num_layers: int) -> int:
    """How many bottom encoder layers are frozen and cached (0: none, or caching is off).

    Frozen layers run in inference mode (no dropout) when cached; that is the only difference
    from running them in every step, and it saves all of their compute after the first pass.
    """
    k = model.trainable_layers
    if not model.cache_frozen_layers or k < 0 or k >= num_layers:
        return 0
    return num_layers - k


def softmax_loss(scores: jax.Array) -> jax.Array:
    """Cross-entropy of the clicked candidate (column 0) against its K non-clicked ones."""
    return jnp.mean(jax.nn.logsumexp(scores, axis=-1) - scores[:, 0])


def news_loss(cached_layers: int):
    """The news task's loss(model, batch, cache, rngs): softmax over each sample's candidates.

    With `cached_layers` > 0 the news items' bottom layers come from `cache` (an array
    [news table rows, L, H]); otherwise `cache` is None and BERT runs whole.
    """

    def loss(model: NewsRecommender, batch, cache, rngs) -> jax.Array:
        if not cached_layers:
            return softmax_loss(model(batch, deterministic=False, rngs=rngs))
        news = batch["news"]
        hidden = jnp.take(cache, news["rows"], axis=0)
        vecs = model.encode_news_from(
            hidden, news["attention_mask"], cached_layers, deterministic=False, rngs=rngs
        )
        return softmax_loss(model.score_batch(vecs, batch, deterministic=False, rngs=rngs))

    return loss


def make_train_step(graphdef, tx: optax.GradientTransformation, loss, shardings: dict[str, Any]):
    """The jitted (trainable, frozen, opt_state, batch, rng, extra) -> (trainable, opt_state,
    metrics), with the parameters and optimizer state donated.

    A batch stacks m micro-batches [m, ...]; their gradients are averaged before one update,
    which is the update of the whole batch (micro-batches are equal in size).
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


def popularity_baseline(train: NewsSplit, dev: NewsSplit) -> dict[str, float]:
    """Dev metrics of ranking candidates by their click count in the training impressions."""
    counts = metrics.popularity_scores(
        (c, y)
        for imp in train.split.impressions
        for c, y in zip(imp.candidates, imp.labels, strict=True)
    )
    ids = [imp.candidates for imp in dev.split.impressions]
    scores = metrics.score_by_popularity(ids, counts)
    rows = [scores[i, : len(c)] for i, c in enumerate(ids)]
    return evaluate.ranking_metrics(rows, dev.log.labels)


def validate(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> None:
    """Batch shapes that the mesh can split, checked before anything is read or compiled."""
    shards = sharding.batch_shards(mesh)
    batch, micro = int(config.train.batch_size), int(config.train.micro_batches)
    if micro <= 0 or batch <= 0 or batch % micro or (batch // micro) % shards:
        raise ConfigError(
            f"train.batch_size ({batch}) must be a positive multiple of train.micro_batches "
            f"({micro}) times the {shards} batch shards of mesh {dict(mesh.shape)}"
        )
    for key, value in (
        ("data.news_bucket", config.data.news_bucket),
        ("train.eval_batch_size", config.train.eval_batch_size),
    ):
        if value <= 0 or value % shards:
            raise ConfigError(
                f"{key} ({value}) must be a positive multiple of the {shards} batch shards "
                f"of mesh {dict(mesh.shape)}"
            )


def create_model(
    config: ml_collections.ConfigDict, bert_config: BertConfig, folder: Path, mesh
) -> tuple[NewsRecommender, nnx.State]:
    """The model, created directly into its shardings, with the pretrained encoder weights.

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

    def create() -> NewsRecommender:
        bert = BertModel(bert_config, dtype=dtype, rngs=nnx.Rngs(config.seed))
        return build_model(config, bert)

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
    return model, shardings


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir`; returns (and writes to metrics.json) the final results."""
    mesh = sharding.make_mesh(config.mesh.shape)
    validate(config, mesh)
    with sharding.activate(mesh, config.mesh.rules):
        return _train_and_evaluate(config, Path(workdir), mesh)


def _train_and_evaluate(config, workdir: Path, mesh) -> dict[str, Any]:
    start = time.time()
    lead = jax.process_index() == 0  # only process 0 writes files other than checkpoints
    if lead:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

    # Data: every news item tokenized once; the pipeline moves integers.
    report = mind.ReadReport()
    folder = pretrained.resolve(config.model.init_from)
    bert_config = hf.read_config(folder)
    if lead:
        save_encoder_files(folder, workdir)
    tokenizer = TextTokenizer(folder, bert_config.vocab_size)
    cache_dir = config.data.cache_dir or workdir / "cache"
    train_data = load_split(config.data, "train", tokenizer, cache_dir=cache_dir, report=report)
    dev_data = load_split(config.data, "dev", tokenizer, cache_dir=cache_dir, report=report)
    log.info(
        "train: %d impressions, %d news; dev: %d impressions, %d news",
        len(train_data.log),
        len(train_data.table) - 1,
        len(dev_data.log),
        len(dev_data.table) - 1,
    )
    if report.as_dict():
        log.warning("skipped or defaulted while reading: %s", report.as_dict())

    # Model and optimizer, placed by the mesh and rule table; only the configured scope of
    # the encoder is trained.
    model, _ = create_model(config, bert_config, folder, mesh)
    is_trainable = optim.trainable_filter(
        bert_config.num_hidden_layers, config.model.trainable_layers
    )
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    num_steps = int(config.train.num_steps)
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
    ckpt = checkpointing.manager(
        workdir, metric=config.train.early_stopping_metric, keep=config.train.keep_checkpoints
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

    feed = sharding.Feed(mesh)
    cached_layers = frozen_bottom_layers(config.model, bert_config.num_hidden_layers)
    train_step = make_train_step(graphdef, tx, news_loss(cached_layers), shardings)
    infer = evaluate.NewsInference(graphdef, feed)
    train_cache = dev_cache = None
    if cached_layers:
        tick = time.time()
        eval_bs = config.train.eval_batch_size
        train_cache = evaluate.lower_cache(
            infer, (trainable, frozen), train_data.table, cached_layers, eval_bs
        )
        dev_cache = evaluate.lower_cache(
            infer, (trainable, frozen), dev_data.table, cached_layers, eval_bs
        )
        log.info(
            "frozen layers 0-%d computed once per news item in %.1f s",
            cached_layers - 1,
            time.time() - tick,
        )
    batch_size = int(config.train.batch_size)
    batches = train_batches(
        train_data.log,
        train_data.table,
        batch_size=batch_size,
        npratio=config.data.npratio,
        seed=config.seed,
        news_bucket=config.data.news_bucket,
        micro_batches=config.train.micro_batches,
        block=feed.block,
        start_batch=progress["step"],
    )
    writer = (
        tf.summary.create_file_writer(str(workdir / "tensorboard"))
        if lead
        else tf.summary.create_noop_writer()
    )
    metric_name = config.train.early_stopping_metric
    samples_per_epoch = count_train_samples(train_data.log)
    log.info(
        "%d training samples per epoch; %d steps of %d (%.2f epochs)",
        samples_per_epoch,
        num_steps,
        batch_size,
        num_steps * batch_size / max(samples_per_epoch, 1),
    )

    def run_eval(step: int) -> dict[str, float]:
        scores = evaluate.score_split(
            infer,
            (trainable, frozen),
            dev_data.table,
            dev_data.log,
            config.train.eval_batch_size,
            dev_cache,
        )
        result = evaluate.ranking_metrics(scores, dev_data.log.labels)
        with writer.as_default(step=step):
            for k in metrics.METRIC_NAMES:
                tf.summary.scalar(f"eval/{k}", result[k])
        return result

    def save(step: int, result: dict[str, float] | None = None) -> None:
        checkpointing.save(
            ckpt,
            step,
            params=nnx.merge_state(trainable, frozen).filter(nnx.Param),
            opt_state=opt_state,
            progress=dict(progress, step=step),
            metrics={k: result[k] for k in metrics.METRIC_NAMES} if result else None,
        )

    rng = jax.random.key(config.seed)
    pending: list[tuple[int, dict]] = []
    step = progress["step"]
    first = step + 1
    tick, ticked_step = time.time(), progress["step"]
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
            batch = feed.put_local(next(batches), axis=1)
            trainable, opt_state, step_metrics = train_step(
                trainable,
                frozen,
                opt_state,
                batch,
                jax.random.fold_in(rng, step),
                train_cache.hidden if train_cache else None,
            )
            pending.append((step, step_metrics))
            last = step == num_steps
            if step % config.train.log_every == 0 or last:
                rate = (step - ticked_step) * batch_size / (time.time() - tick)
                tick, ticked_step = time.time(), step
                loss = _log_train(writer, pending, lr, rate)
                pending = []
                bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{rate:.1f}")
            evaluating = step % config.train.eval_every == 0 or last
            stopping = bool(preempted) or ckpt.reached_preemption(step)
            saving = evaluating or stopping or step % config.train.save_every == 0
            if saving:
                _assert_finite(pending)  # never evaluate or save a diverged model
            result = None
            if evaluating:
                result = run_eval(step)
                say(f"step {step}: dev " + _fmt(result))
                if progress["best_value"] is None or result[metric_name] > progress["best_value"]:
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
        "popularity_baseline": popularity_baseline(train_data, dev_data),
        "read_report": report.as_dict(),
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


def _log_train(writer, pending, lr, rate: float) -> float:
    """Checks and writes the buffered step metrics; returns the last loss."""
    fetched = _assert_finite(pending)
    with writer.as_default():
        for (step, _), m in zip(pending, fetched, strict=True):
            tf.summary.scalar("train/loss", m["loss"], step=step)
            tf.summary.scalar("train/grad_norm", m["grad_norm"], step=step)
            tf.summary.scalar("train/learning_rate", float(lr(step)), step=step)
        tf.summary.scalar("train/samples_per_second", rate, step=pending[-1][0])
    return float(fetched[-1]["loss"])


def _count(state: nnx.State) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state))


def _fmt(result: dict[str, float]) -> str:
    return " ".join(f"{k}={result[k]:.4f}" for k in metrics.METRIC_NAMES)
