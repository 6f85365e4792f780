"""train_and_evaluate(config, workdir): fine-tune the news recommender, evaluate, keep the best."""

from __future__ import annotations

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

from jaxrec import checkpointing, evaluate, metrics, optim, pretrained
from jaxrec.data import mind
from jaxrec.data.news_data import NewsSplit, load_split
from jaxrec.data.pipeline import count_train_samples, train_batches
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import ConfigError
from jaxrec.models.bert import BertModel
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


def make_train_step(
    graphdef, tx: optax.GradientTransformation, shardings: dict[str, Any], cached_layers: int = 0
):
    """The jitted (trainable, frozen, opt_state, batch, rng, cache) -> (trainable, opt_state,
    metrics). With `cached_layers` > 0 the news items' bottom layers come from `cache`
    (an array [news table rows, L, H]); otherwise `cache` is None and BERT runs whole."""

    def scores_fn(model, batch, cache, rngs):
        if not cached_layers:
            return model(batch, deterministic=False, rngs=rngs)
        news = batch["news"]
        hidden = jnp.take(cache, news["rows"], axis=0)
        vecs = model.encode_news_from(
            hidden, news["attention_mask"], cached_layers, deterministic=False, rngs=rngs
        )
        return model.score_batch(vecs, batch, deterministic=False, rngs=rngs)

    def train_step(trainable, frozen, opt_state, batch, rng, cache):
        def loss_fn(trainable):
            model = nnx.merge(graphdef, trainable, frozen)
            return softmax_loss(scores_fn(model, batch, cache, nnx.Rngs(dropout=rng)))

        loss, grads = jax.value_and_grad(loss_fn)(trainable)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        return (
            trainable,
            opt_state,
            {
                "loss": loss,
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


def batch_shardings(mesh: jax.sharding.Mesh) -> dict[str, Any]:
    """Every batch array is split along its leading axis over the `data` mesh axis."""
    rows = NamedSharding(mesh, P("data"))
    news = {k: rows for k in ("rows", "input_ids", "attention_mask", "token_type_ids")}
    return {"news": news, "history": rows, "history_mask": rows, "candidates": rows}


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict[str, Any]:
    """Trains `config` in `workdir`; returns (and writes to metrics.json) the final results."""
    start = time.time()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

    batch_size = int(config.train.batch_size)
    if (
        batch_size <= 0
        or batch_size % jax.device_count()
        or (config.data.news_bucket % jax.device_count())
    ):
        raise ConfigError(
            f"train.batch_size ({batch_size}) and data.news_bucket ({config.data.news_bucket}) "
            f"must be positive multiples of the device count {jax.device_count()}"
        )

    # Data: every news item tokenized once; the pipeline moves integers.
    report = mind.ReadReport()
    bert, bert_config, encoder_source = pretrained.load_bert(
        config.model.init_from, dtype=jnp.dtype(config.model.dtype), seed=config.seed
    )
    save_encoder_files(encoder_source, workdir)
    tokenizer = TextTokenizer(encoder_source, bert_config.vocab_size)
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

    # Model and optimizer: only the configured scope of the encoder is trained.
    model = build_model(config, bert)
    is_trainable = optim.trainable_filter(
        bert_config.num_hidden_layers, config.model.trainable_layers
    )
    graphdef, trainable, frozen = nnx.split(model, is_trainable, ...)
    num_steps = int(config.train.num_steps)
    lr = optim.schedule(config.train, num_steps)
    tx = optim.optimizer(config.train, lr, trainable)
    log.info(
        "parameters: %s trainable of %s", _count(trainable), _count(trainable) + _count(frozen)
    )

    # Placement: parameters replicated, batches split over all devices (data parallelism).
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated = NamedSharding(mesh, P())
    trainable = jax.device_put(trainable, replicated)
    frozen = jax.device_put(frozen, replicated)
    opt_state = jax.jit(tx.init, out_shardings=replicated)(trainable)
    shardings = {
        "trainable": replicated,
        "frozen": replicated,
        "opt_state": replicated,
        "batch": batch_shardings(mesh),
        "replicated": replicated,
    }
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
        trainable, frozen = jax.device_put((trainable, frozen), replicated)
        log.info("resuming from %s/%d", ckpt.directory, step)

    cached_layers = frozen_bottom_layers(config.model, bert_config.num_hidden_layers)
    train_step = make_train_step(graphdef, tx, shardings, cached_layers)
    infer = evaluate.NewsInference(graphdef)
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
        train_cache = dataclasses.replace(
            train_cache, hidden=jax.device_put(train_cache.hidden, replicated)
        )
        log.info(
            "frozen layers 0-%d computed once per news item in %.1f s",
            cached_layers - 1,
            time.time() - tick,
        )
    batches = train_batches(
        train_data.log,
        train_data.table,
        batch_size=batch_size,
        npratio=config.data.npratio,
        seed=config.seed,
        news_bucket=config.data.news_bucket,
        start_batch=progress["step"],
    )
    writer = tf.summary.create_file_writer(str(workdir / "tensorboard"))
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
    preempted = _SignalFlag(signal.SIGTERM)
    bar = tqdm(
        range(first, num_steps + 1),
        desc="train",
        unit="step",
        dynamic_ncols=True,
        initial=first - 1,
        total=num_steps,
    )
    try:
        for step in [] if progress["done"] else bar:
            batch = jax.device_put(next(batches), shardings["batch"])
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
                tqdm.write(f"step {step}: dev " + _fmt(result))
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
                    tqdm.write(
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
    (workdir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


class Preempted(Exception):
    """The run was asked to stop (SIGTERM or a maintenance event) and saved its step."""

    exit_code = 143  # 128 + SIGTERM: what schedulers see from a job ended by SIGTERM

    def __init__(self, step: int, directory) -> None:
        super().__init__(f"preempted at step {step}: saved {directory}/{step}; rerun to resume")


class _SignalFlag:
    """True once `signum` has arrived; the training loop saves at the next step boundary."""

    def __init__(self, signum: int) -> None:
        self.signum, self.seen = signum, False
        try:
            self.previous = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals to the caller
            self.previous = None

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
