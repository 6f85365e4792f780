"""PLM-NR news recommendation on MIND: data, model, loss, batches, evaluation, predictions.

Every news item is tokenized once into a table; a training batch carries each distinct
news item once, in groups of a few token widths (`data.length_groups`). With only the top k
encoder layers trained, the frozen layers below run once per news item per run (a cache),
not once per step. With `train.history_cache` = N, history items read their vectors from a
cache of every training news item's latest vector, re-encoded when N steps old (the step's
`carry`). MIND's convention for splits: `dev` is the labelled evaluation split (early
stopping and the best checkpoint), `test` has no labels and is only predicted.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from jaxrec import flops, metrics, optim
from jaxrec.data.mind import BEHAVIORS_FILE
from jaxrec.data.news_batches import Layout, plan_layout, simulate
from jaxrec.data.news_data import NewsSplit, load_split, split_folder, stream_split
from jaxrec.data.pipeline import (
    count_train_samples,
    length_buckets,
    micro_batch_samples,
    text_lengths,
    train_batches,
)
from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.news import POOLINGS, USER_ENCODERS, NewsRecommender, write_news_cache
from jaxrec.tasks import news_inference as infer
from jaxrec.tasks.base import Task
from jaxrec.tasks.table_encoding import cached_rows

log = logging.getLogger(__name__)
PLAN_MICRO_BATCHES = 256  # simulated to size the batches' groups (more with a history cache)


def build_model(config: ml_collections.ConfigDict, bert: BertModel) -> NewsRecommender:
    m = config.model
    return NewsRecommender(
        bert,
        pooling=m.pooling,
        user_encoder=m.user_encoder,
        attention_hidden=m.attention_hidden,
        user_heads=m.user_heads,
        dtype=jnp.dtype(m.dtype),
        rngs=nnx.Rngs(config.seed),
    )


def softmax_loss(scores: jax.Array) -> jax.Array:
    """Cross-entropy of the clicked candidate (column 0) against its K non-clicked ones."""
    return jnp.mean(jax.nn.logsumexp(scores, axis=-1) - scores[:, 0])


def news_loss(cached_layers: int):
    """loss(model, batch, lower, carry, rngs) -> (loss, carry): softmax over each sample's
    candidates.

    With `cached_layers` > 0 the news items' bottom layers come from `lower` (an array
    [news table rows, L, H]); otherwise `lower` is None and BERT runs whole. With a carry
    (`{"vectors": [rows, D], "age": [rows]}`), history indices past the encoded items read
    the cached vectors, and the items encoded here are written back.
    """

    def loss(model: NewsRecommender, batch, lower, carry, rngs):
        groups = batch["news"]
        if not cached_layers:
            vecs = model.encode_groups(groups, deterministic=False, rngs=rngs)
        else:
            vecs = jnp.concatenate(
                [
                    model.encode_news_from(
                        cached_rows(lower, g["rows"], g["attention_mask"]),
                        g["attention_mask"],
                        cached_layers,
                        deterministic=False,
                        rngs=rngs,
                    )
                    for g in groups
                ]
            )
        cache = None if carry is None else carry["vectors"]
        scores = model.score_batch(vecs, batch, cache=cache, deterministic=False, rngs=rngs)
        if carry is not None:
            carry = write_news_cache(carry, jnp.concatenate([g["rows"] for g in groups]), vecs)
        return softmax_loss(scores), carry

    return loss


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
    return metrics.ranking_metrics(rows, dev.log.labels)


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, highest first; ties keep the listed order."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


class NewsTask(Task):
    """PLM-NR: a BERT news encoder, a user encoder over the clicks, dot-product scores."""

    name = "news"
    sharded_sizes = ("data.news_bucket", "train.eval_batch_size")
    metric_names = metrics.METRIC_NAMES
    baseline_name = "popularity baseline"
    has_test_labels = False  # MIND's test split is predicted (`jaxrec.predict --split=test`)

    @staticmethod
    def check_config(c, encoder: BertConfig) -> None:
        from jaxrec.data.mind import UNKNOWN_NEWS_POLICIES
        from jaxrec.data.news_table import TEXT_FIELDS

        c.choice("train.early_stopping_metric", metrics.METRIC_NAMES)
        c.choice("model.pooling", POOLINGS)
        user_encoder = c.choice("model.user_encoder", USER_ENCODERS)
        c.integer("model.attention_hidden", low=1)
        heads = c.integer("model.user_heads", low=1)
        if user_encoder == "mhsa" and encoder.hidden_size % heads:
            raise c.fail(
                "model.user_heads", heads, f"a divisor of hidden size {encoder.hidden_size}"
            )
        c.boolean("model.cache_frozen_layers")
        c.boolean("data.length_groups")
        c.integer("train.history_cache", low=0)
        fields = c.strings("data.news_fields", TEXT_FIELDS)
        if not fields or "title" not in fields:
            expected = f"a list of {TEXT_FIELDS} that includes 'title'"
            raise c.fail("data.news_fields", c.get("data.news_fields"), expected)
        low = 3 if "abstract" in fields else 2
        c.integer("data.title_len", low=low, high=encoder.max_position_embeddings)
        c.integer("data.history_len", low=1)
        c.integer("data.npratio", low=1)
        c.integer("data.news_bucket", low=1)
        c.choice("data.unknown_news", UNKNOWN_NEWS_POLICIES)
        if c.get("data.max_unknown_news_share", None) is not None:  # older workdirs lack it
            c.number("data.max_unknown_news_share", 0.0, 1.0)
        from jaxrec.data.news_data import SOURCES

        if c.choice("data.source", SOURCES) == "folder" or c.get("data.dir"):
            c.string("data.dir", empty=False)
            c.folder("data.dir", c.get("data.dir"), "train", "dev")
        if c.get("data.source") == "tfds":
            from jaxrec.data.tfds_mind import Mind

            c.choice("data.tfds_config", [b.name for b in Mind.BUILDER_CONFIGS])
            c.string("data.tfds_data_dir")

    # -- 1. Data --------------------------------------------------------------------------------

    def read(self) -> None:
        self.train, self.dev = (self._load(name) for name in ("train", "dev"))
        self.samples_per_epoch = count_train_samples(self.train.log)
        check_one_batch(self.samples_per_epoch, self.config)
        log.info(
            "train: %d impressions, %d news; dev: %d impressions, %d news",
            len(self.train.log),
            len(self.train.table) - 1,
            len(self.dev.log),
            len(self.dev.table) - 1,
        )

    def _load(self, name: str, data_dir: str | None = None) -> NewsSplit:
        """A split, stopped if it skipped more than `data.max_skipped_share` of its rows."""
        data = self.config.data
        split_report = ReadReport()  # per split, so an error names that split's files
        split = load_split(
            data,
            name,
            self.env.tokenizer,
            cache_dir=self.env.cache_dir,
            report=split_report,
            data_dir=data_dir,
        )
        split_report.check_share(data.get("max_skipped_share", 1.0))  # older workdirs lack it
        self.env.report.merge(split_report)
        return split

    # -- 2. Model ------------------------------------------------------------------------------

    def build(self, bert: BertModel) -> NewsRecommender:
        self.bert_config = bert.config
        m = self.config.model
        self.cached_layers = optim.frozen_bottom_layers(m, bert.config.num_hidden_layers)
        return build_model(self.config, bert)

    # -- 3. Start ------------------------------------------------------------------------------

    def start(self, graphdef: nnx.GraphDef, states) -> None:
        """Compiles inference, runs the frozen bottom layers once per news item, plans the
        batches' layout and fills the news-vector cache."""
        self.infer = infer.NewsInference(graphdef, self.env.feed)
        self.dev_cache = train_cache = None
        bs = self.config.train.eval_batch_size
        if self.cached_layers:
            tick = time.time()
            train_cache = infer.lower_cache(
                self.infer, states, self.train.table, self.cached_layers, bs
            )
            self.extra = train_cache.hidden
            log.info(
                "frozen layers 0-%d computed once per training news item in %.1f s",
                self.cached_layers - 1,
                time.time() - tick,
            )
        self.layout = self._plan_layout()
        log.info(
            "news per micro-batch: widths %s, rows %s (the widest grows by %d when needed)",
            self.layout.widths,
            self.layout.capacities,
            self.layout.bucket,
        )
        if self.config.train.history_cache:
            tick = time.time()
            vecs = infer.news_vectors(self.infer, states, self.train.table, bs, train_cache)
            feed, stale = self.env.feed, self._refresh_micro_batches()
            self.carry = {
                "vectors": feed.replicate(vecs),
                "age": feed.replicate(np.full(len(vecs), stale, np.int32)),
            }
            log.info(
                "news-vector cache of %d items filled in %.1f s", len(vecs), time.time() - tick
            )

    def _refresh_micro_batches(self) -> int:
        t = self.config.train
        return t.history_cache * t.micro_batches

    def _plan_layout(self) -> Layout:
        """Groups of a few widths sized on the first batches (or one full-width group)."""
        c = self.config
        if not c.data.length_groups:
            return Layout.full_width(c.data.title_len, c.data.news_bucket)
        widths = length_buckets(c.data.title_len)
        refresh = self._refresh_micro_batches()
        samples = micro_batch_samples(
            self.train.log,
            batch_size=c.train.batch_size // c.train.micro_batches,
            npratio=c.data.npratio,
            seed=c.seed,
            count=max(PLAN_MICRO_BATCHES, 4 * refresh),
        )
        lengths = text_lengths(self.train.table.tokens["attention_mask"])
        counts = simulate(lengths, widths, samples, refresh)
        return plan_layout(counts, widths, bucket=c.data.news_bucket, shards=self.env.feed.block[2])

    # -- 4. Loss and 5. batches ------------------------------------------------------------------

    def loss(self, model, batch, extra, rngs) -> jax.Array:
        return news_loss(self.cached_layers)(model, batch, extra, None, rngs)[0]

    def step_loss(self, model, batch, extra, carry, rngs):
        return news_loss(self.cached_layers)(model, batch, extra, carry, rngs)

    def batches(self, start_step: int):
        c = self.config
        age = None
        if self.carry is not None:
            age = np.array(self.env.feed.get(self.carry["age"]))
        return train_batches(
            self.train.log,
            self.train.table,
            batch_size=c.train.batch_size,
            npratio=c.data.npratio,
            seed=c.seed,
            news_bucket=c.data.news_bucket,
            micro_batches=c.train.micro_batches,
            block=self.env.feed.block,
            start_batch=start_step,
            layout=self.layout,
            history_cache=c.train.history_cache,
            age=age,
        )

    def step_flops(self, local_batch) -> float:
        groups = local_batch["news"]
        layers, k = self.bert_config.num_hidden_layers, self.config.model.trainable_layers
        scale = self.env.feed.scale
        return flops.encoder_step_flops(
            self.bert_config,
            [
                (g["input_ids"].shape[0] * g["input_ids"].shape[1] * scale, g["input_ids"].shape[2])
                for g in groups
            ],
            computed_layers=layers - self.cached_layers,
            trained_layers=layers if k < 0 else k,
        )

    # -- 6. Validation and 7. test -------------------------------------------------------------

    def higher_is_better(self, metric: str) -> bool:
        return True  # AUC, MRR, nDCG

    def evaluate(self, states) -> dict[str, float]:
        bs = self.config.train.eval_batch_size
        if self.cached_layers and self.dev_cache is None:  # the frozen layers: once per run
            self.dev_cache = infer.lower_cache(
                self.infer, states, self.dev.table, self.cached_layers, bs
            )
        return infer.evaluate_split(
            self.infer, states, self.dev.table, self.dev.log, bs, self.dev_cache
        )

    def baseline(self) -> dict[str, dict[str, float] | None]:
        return {"dev": popularity_baseline(self.train, self.dev), "test": None}

    def summary(self) -> dict[str, Any]:
        """The share of history and candidate slots whose news has no text, per split."""
        shares = {"train": self.train.unknown_share, "dev": self.dev.unknown_share}
        return {"unknown_news_share": shares}

    # -- 8. Predict and 9. export --------------------------------------------------------------

    def predict(self, graphdef, states, output: Path, *, split, data_dir, batch_size) -> int:
        """The leaderboard format: one line per impression in behaviors.tsv order,
        `ImpressionID [r1,r2,...]`, the rank of each candidate in its listed order.

        Lines are written as each chunk of impressions is scored, never gathered first.
        """
        table, parts = stream_split(
            self.config.data,
            split or "dev",
            self.env.tokenizer,
            cache_dir=self.env.cache_dir,
            report=self.env.report,
            data_dir=data_dir,
            chunk=infer.CHUNK,
        )
        fns = infer.NewsInference(graphdef, self.env.feed)
        tmp, n = Path(f"{output}.tmp"), 0
        with open(tmp, "w", encoding="utf-8") as f:
            for imps, scores in infer.split_scores(fns, states, table, parts, batch_size):
                for imp, s in zip(imps, scores, strict=True):
                    f.write(f"{imp.impression_id} [{','.join(map(str, ranks(s)))}]\n")
                n += len(scores)
        self.env.report.log(log)
        os.replace(tmp, output)
        return n

    def export_fields(self) -> dict[str, Any]:
        c = self.config
        return {
            "pooling": c.model.pooling,
            "user_encoder": c.model.user_encoder,
            "attention_hidden": c.model.attention_hidden,
            "user_heads": c.model.user_heads,
            "title_len": c.data.title_len,
            "history_len": c.data.history_len,
            "news_fields": list(c.data.news_fields),
        }


def check_one_batch(samples: int, config: ml_collections.ConfigDict) -> None:
    """Raises DataError, before any model is built, when training cannot fill one batch."""
    batch = int(config.train.batch_size)
    if samples < batch:
        raise DataError(
            f"{samples} training samples (one per click in an impression that also has a "
            f"non-click), fewer than one batch (train.batch_size={batch})",
            path=str(split_folder(config.data, "train") / BEHAVIORS_FILE),
        )
