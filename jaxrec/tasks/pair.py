"""Rating regression, click prediction and multi-label tagging of (user, item) pairs.

The data: a PairData (MovieLens, or the generic interactions format) whose user and item
texts are tokenized once each into tables; interactions become integer arrays (table rows,
ID-embedding indices, targets). Training batches carry each distinct user and item text of
a micro-batch once. Evaluation of two towers encodes every user and every item once and then
runs only the head per pair; a cross-encoder reads each pair.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from jaxrec import flops, optim, pair_metrics
from jaxrec.data.interactions import Interactions, PairData
from jaxrec.data.pair_data import load_pair_data
from jaxrec.data.pipeline import padded_batches, pair_batches
from jaxrec.data.report import ReadReport
from jaxrec.data.text_table import TextTable, build_text_table
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import DataError
from jaxrec.evaluate import cached_rows, table_hidden, table_vectors
from jaxrec.models.bert import BertModel
from jaxrec.models.lora import add_lora, lora_trainable_filter
from jaxrec.models.pair import PairRecommender
from jaxrec.sharding import Feed

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PairLog:
    """One split's interactions as integers, in file order."""

    user_rows: np.ndarray  # [n] rows of the user text table
    item_rows: np.ndarray  # [n] rows of the item text table
    user_id: np.ndarray  # [n] ID-embedding index; 0 for IDs unseen in training
    item_id: np.ndarray  # [n]
    targets: np.ndarray  # [n, K] float32

    def arrays(self) -> dict[str, np.ndarray]:
        return dataclasses.asdict(self)

    def __len__(self) -> int:
        return len(self.targets)


def outputs(data: PairData) -> int:
    return len(data.label_names) if data.task == "multilabel" else 1


def pair_log(split: Interactions, users: TextTable, items: TextTable, ids: dict) -> PairLog:
    targets = split.targets.astype(np.float32)
    return PairLog(
        user_rows=users.rows(split.users),
        item_rows=items.rows(split.items),
        user_id=np.fromiter((ids["users"].get(u, 0) for u in split.users), np.int32, len(split)),
        item_id=np.fromiter((ids["items"].get(i, 0) for i in split.items), np.int32, len(split)),
        targets=targets.reshape(len(split), -1),
    )


def to_prediction(out: jax.Array, task: str, rating_range) -> jax.Array:
    """Head outputs -> predictions: a rating inside the range, or probabilities."""
    if task == "rating":
        lo, hi = rating_range
        return lo + (hi - lo) * jax.nn.sigmoid(out)
    return jax.nn.sigmoid(out)


def pair_loss(out: jax.Array, targets: jax.Array, task: str, rating_range) -> jax.Array:
    """MSE of ratings; sigmoid cross-entropy of clicks and of each label."""
    if task == "rating":
        return jnp.mean((to_prediction(out, task, rating_range) - targets) ** 2)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(out, targets))


def task_metrics(task: str, targets: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if task == "rating":
        return pair_metrics.rating_metrics(targets[:, 0], pred[:, 0])
    if task == "click":
        return pair_metrics.click_metrics(targets[:, 0], pred[:, 0])
    return pair_metrics.multilabel_metrics(targets, pred)


def baseline_predictions(data: PairData, train: PairLog, test: PairLog) -> np.ndarray:
    """What the text model has to beat, [n_test, K].

    Ratings: global mean plus damped user and item biases (alternating least squares, the
    classic baseline predictor). Clicks and labels: each item's smoothed training rate.
    """
    y = train.targets
    if data.task == "rating":
        mu, damp = float(y.mean()), 10.0
        bu = np.zeros(train.user_id.max(initial=0) + 1)
        bi = np.zeros(train.item_id.max(initial=0) + 1)
        for _ in range(10):
            r = y[:, 0] - mu - bu[train.user_id]
            bi = np.bincount(train.item_id, r, len(bi)) / (
                np.bincount(train.item_id, None, len(bi)) + damp
            )
            r = y[:, 0] - mu - bi[train.item_id]
            bu = np.bincount(train.user_id, r, len(bu)) / (
                np.bincount(train.user_id, None, len(bu)) + damp
            )
        bu[0] = bi[0] = 0.0  # unseen IDs get no bias
        pred = mu + bu[test.user_id] + bi[test.item_id]
        lo, hi = data.rating_range
        return np.clip(pred, lo, hi)[:, None]
    prior, damp = y.mean(axis=0), 5.0
    counts = np.zeros((train.item_id.max(initial=0) + 1, y.shape[1]))
    np.add.at(counts, train.item_id, y)
    seen = np.bincount(train.item_id, None, len(counts))[:, None]
    rates = (counts + damp * prior) / (seen + damp)
    rates[0] = prior
    return rates[test.item_id]


class PairTask:
    """What the trainer needs for one pair task: data, model, loss, batches, evaluation."""

    SHARDED_SIZES = ("data.text_bucket", "train.eval_batch_size")

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        *,
        tokenizer: TextTokenizer,
        cache_dir: str | Path,
        feed: Feed,
        report: ReadReport,
    ) -> None:
        self.config, self.feed = config, feed
        self.data = load_pair_data(config.data, report)
        report.check_share(config.data.get("max_skipped_share", 1.0))  # older workdirs lack it
        d = config.data
        self.users = build_text_table(self.data.user_text, tokenizer, d.user_len, cache_dir)
        self.items = build_text_table(self.data.item_text, tokenizer, d.item_len, cache_dir)
        ids = {
            "users": {u: i + 1 for i, u in enumerate(dict.fromkeys(self.data.train.users))},
            "items": {v: i + 1 for i, v in enumerate(dict.fromkeys(self.data.train.items))},
        }
        self.ids = ids  # ID -> embedding row, in order of first appearance in training
        self.num_ids = (len(ids["users"]), len(ids["items"]))
        self.train = pair_log(self.data.train, self.users, self.items, ids)
        self.test = pair_log(self.data.test, self.users, self.items, ids)
        self.metric_names = pair_metrics.PAIR_METRICS[self.data.task]
        self.samples_per_epoch = len(self.train)
        batch = int(config.train.batch_size)
        if len(self.train) < batch:  # before any model is built
            raise DataError(
                f"{len(self.train)} training pairs, fewer than one batch "
                f"(train.batch_size={batch})",
                path=self.data.train.source,
            )
        self.extra = None  # the frozen-layer caches of the user and item tables, if any
        self.cached_layers = 0
        log.info(
            "%s: %d train and %d test pairs; %d users, %d items",
            self.data.task,
            len(self.train),
            len(self.test),
            len(self.users) - 1,
            len(self.items) - 1,
        )

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return pair_metrics.HIGHER_IS_BETTER[metric]

    def build(self, bert: BertModel) -> PairRecommender:
        m = self.config.model
        self.bert_config = bert.config
        if m.architecture == "two_tower" and not m.lora_rank:
            self.cached_layers = optim.frozen_bottom_layers(m, bert.config.num_hidden_layers)
        rngs = nnx.Rngs(self.config.seed)
        model = PairRecommender(
            bert,
            outputs=outputs(self.data),
            architecture=m.architecture,
            head=m.head,
            pooling=m.pooling,
            num_users=self.num_ids[0] if m.use_ids else 0,
            num_items=self.num_ids[1] if m.use_ids else 0,
            id_dim=m.id_dim,
            mlp_hidden=m.mlp_hidden,
            dropout=bert.config.hidden_dropout_prob,
            dtype=jnp.dtype(m.dtype),
            rngs=rngs,
        )
        model.global_bias[...] = self._initial_bias()
        if m.lora_rank:
            add_lora(bert, rank=m.lora_rank, alpha=m.lora_alpha, targets=m.lora_targets, rngs=rngs)
        return model

    def step_flops(self, local_batch) -> float:
        """Model FLOPs of one step, from this process's part of the batch (jaxrec/flops.py)."""
        bert, m = self.bert_config, self.config.model
        users, items = local_batch["users"]["input_ids"], local_batch["items"]["input_ids"]
        scale = self.feed.scale
        if m.architecture == "cross":
            pairs = local_batch["targets"].shape[0] * local_batch["targets"].shape[1] * scale
            encoded = [(pairs, users.shape[-1] + items.shape[-1] - 1)]
        else:
            encoded = [
                (users.shape[0] * users.shape[1] * scale, users.shape[-1]),
                (items.shape[0] * items.shape[1] * scale, items.shape[-1]),
            ]
        layers, k = bert.num_hidden_layers, m.trainable_layers
        return flops.encoder_step_flops(
            bert,
            encoded,
            computed_layers=layers - self.cached_layers,
            trained_layers=layers if k < 0 else k,
            lora=bool(m.lora_rank),
        )

    def _initial_bias(self) -> np.ndarray:
        """Outputs start at the training mean (a rating, or the click and label rates)."""
        mean = self.train.targets.mean(axis=0)
        if self.data.task == "rating":
            lo, hi = self.data.rating_range
            mean = (mean - lo) / (hi - lo)
        mean = np.clip(mean, 1e-3, 1 - 1e-3)
        return np.log(mean / (1 - mean)).astype(np.float32)

    def trainable_filter(self, num_layers: int):
        if self.config.model.lora_rank:
            return lora_trainable_filter("bert")
        return optim.trainable_filter(num_layers, self.config.model.trainable_layers)

    def loss(self, model: PairRecommender, batch, extra, rngs) -> jax.Array:
        start = self.cached_layers
        out = model(batch, lower=extra, start=start, deterministic=False, rngs=rngs)
        return pair_loss(out, batch["targets"], self.data.task, self.data.rating_range)

    def batches(self, start_step: int):
        c = self.config
        return pair_batches(
            self.train.arrays(),
            self.users.tokens,
            self.items.tokens,
            batch_size=c.train.batch_size,
            seed=c.seed,
            bucket=c.data.text_bucket,
            micro_batches=c.train.micro_batches,
            block=self.feed.block,
            start_batch=start_step,
        )

    def start(self, graphdef: nnx.GraphDef, states) -> None:
        """Compiles the inference functions once the model's graph is known."""
        self.graphdef = graphdef
        self.infer = PairInference(
            graphdef,
            self.feed,
            self.config.model.architecture,
            self.data.task,
            self.data.rating_range,
        )

    def predictions(self, states, log_: PairLog | None = None) -> np.ndarray:
        """[n, K] predictions for a split (the test split by default), in file order."""
        log_ = log_ or self.test
        bs = self.config.train.eval_batch_size
        return self.infer.predict(
            states, self.users, self.items, log_, bs, self.extra, self.cached_layers
        )

    def evaluate(self, states) -> dict[str, float]:
        pred = self.predictions(states)
        return task_metrics(self.data.task, self.test.targets, pred) | {"num_pairs": len(pred)}

    def summary(self) -> dict[str, Any]:
        base = baseline_predictions(self.data, self.train, self.test)
        name = "user+item bias" if self.data.task == "rating" else "item rate"
        return {
            "baseline": task_metrics(self.data.task, self.test.targets, base),
            "baseline_name": f"{name} baseline",
        }


class PairInference:
    """Jitted inference of a PairRecommender graph: text vectors once, then the head."""

    def __init__(
        self, graphdef: nnx.GraphDef, feed: Feed, architecture: str, task: str, rating_range
    ) -> None:
        self.feed, self.architecture = feed, architecture
        out = {"out_shardings": feed.replicated} if feed.mesh is not None else {}

        def encode(states, tokens):
            return nnx.merge(graphdef, *states).encode(tokens)

        def encode_from(states, lower, rows, mask, start):
            model = nnx.merge(graphdef, *states)
            return model.encode_from(cached_rows(lower, rows, mask), mask, start)

        def lower(states, tokens, stop):
            return nnx.merge(graphdef, *states).lower_hidden(tokens, stop)

        def head(states, users, items, batch):
            model = nnx.merge(graphdef, *states)
            pairs = {k: batch[k] for k in ("user_id", "item_id")}
            raw = model.predict(
                jnp.take(users, batch["user_rows"], axis=0),
                jnp.take(items, batch["item_rows"], axis=0),
                pairs,
            )
            return to_prediction(raw, task, rating_range)

        def cross(states, batch):
            return to_prediction(nnx.merge(graphdef, *states)(batch), task, rating_range)

        self.encode = jax.jit(encode, **out)
        self.encode_from = jax.jit(encode_from, static_argnums=4, **out)
        self.lower = jax.jit(lower, static_argnums=2, **out)
        self.head = jax.jit(head, **out)
        self.cross = jax.jit(cross, **out)

    def lower_table(self, states, table: TextTable, stop: int, batch_size: int) -> jax.Array:
        """[rows, L, H]: every text's hidden states after the frozen layers, once."""
        lower = functools.partial(self.lower, states)
        return table_hidden(self.feed, table.tokens, batch_size, lower, stop)

    def vectors(
        self, states, table: TextTable, batch_size: int, lower=None, start: int = 0
    ) -> np.ndarray:
        """[rows, H]: every text of a table encoded once (from its cache when given)."""
        return table_vectors(
            self.feed,
            table.tokens,
            batch_size,
            functools.partial(self.encode, states),
            functools.partial(self.encode_from, states),
            lower,
            start,
        )

    def predict(
        self,
        states,
        users: TextTable,
        items: TextTable,
        log_: PairLog,
        batch_size: int,
        lower: dict[str, jax.Array] | None = None,
        start: int = 0,
    ) -> np.ndarray:
        arrays = {k: v for k, v in log_.arrays().items() if k != "targets"}
        out = []
        if self.architecture == "two_tower":
            vecs = {
                name: self.feed.replicate(
                    self.vectors(states, table, batch_size, lower and lower[name], start)
                )
                for name, table in (("users", users), ("items", items))
            }
            for batch in padded_batches(arrays, batch_size):
                put = self.feed.put({k: batch[k] for k in arrays})
                out.append(
                    self.feed.get(self.head(states, vecs["users"], vecs["items"], put))[
                        batch["valid"]
                    ]
                )
        else:
            for batch in padded_batches(arrays, batch_size):
                n = len(batch["valid"])
                pairs = {
                    "users": {k: v[batch["user_rows"]] for k, v in users.tokens.items()},
                    "items": {k: v[batch["item_rows"]] for k, v in items.tokens.items()},
                    "user_index": np.arange(n, dtype=np.int32),
                    "item_index": np.arange(n, dtype=np.int32),
                    "user_id": batch["user_id"],
                    "item_id": batch["item_id"],
                }
                out.append(self.feed.get(self.cross(states, self.feed.put(pairs)))[batch["valid"]])
        return np.concatenate(out).astype(np.float64)
