"""PLM-NR news recommendation on MIND: data, model, loss, batches and dev evaluation.

Every news item is tokenized once into a table; a training batch carries each distinct
news item once. With only the top k encoder layers trained, the frozen layers below run
once per news item per run (a cache), not once per step.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from jaxrec import evaluate, flops, metrics, optim
from jaxrec.data.mind import BEHAVIORS_FILE
from jaxrec.data.news_data import NewsSplit, load_split
from jaxrec.data.pipeline import count_train_samples, train_batches
from jaxrec.data.report import ReadReport
from jaxrec.data.tokenize import TextTokenizer
from jaxrec.errors import DataError
from jaxrec.models.bert import BertModel
from jaxrec.models.news import NewsRecommender
from jaxrec.sharding import Feed

log = logging.getLogger(__name__)


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


def softmax_loss(scores: jax.Array) -> jax.Array:
    """Cross-entropy of the clicked candidate (column 0) against its K non-clicked ones."""
    return jnp.mean(jax.nn.logsumexp(scores, axis=-1) - scores[:, 0])


def news_loss(cached_layers: int):
    """loss(model, batch, cache, rngs): softmax over each sample's candidates.

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


def _load_checked(data, name: str, tokenizer, cache_dir, report: ReadReport) -> NewsSplit:
    """A split, stopped if it skipped more than `data.max_skipped_share` of its rows."""
    split_report = ReadReport()  # per split, so an error names that split's files
    split = load_split(data, name, tokenizer, cache_dir=cache_dir, report=split_report)
    split_report.check_share(data.get("max_skipped_share", 1.0))  # older workdirs lack it
    report.merge(split_report)
    return split


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


class NewsTask:
    """What the trainer needs for PLM-NR: data, model, loss, batches, dev evaluation."""

    SHARDED_SIZES = ("data.news_bucket", "train.eval_batch_size")

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
        self.train, self.dev = (
            _load_checked(config.data, name, tokenizer, cache_dir, report)
            for name in ("train", "dev")
        )
        self.metric_names = metrics.METRIC_NAMES
        self.samples_per_epoch = count_train_samples(self.train.log)
        check_one_batch(self.samples_per_epoch, config)
        self.extra = None
        self.cached_layers = 0
        log.info(
            "train: %d impressions, %d news; dev: %d impressions, %d news",
            len(self.train.log),
            len(self.train.table) - 1,
            len(self.dev.log),
            len(self.dev.table) - 1,
        )

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return True  # AUC, MRR, nDCG

    def build(self, bert: BertModel) -> NewsRecommender:
        self.bert_config = bert.config
        self.cached_layers = optim.frozen_bottom_layers(
            self.config.model, bert.config.num_hidden_layers
        )
        return build_model(self.config, bert)

    def step_flops(self, local_batch) -> float:
        """Model FLOPs of one step, from this process's part of the batch (jaxrec/flops.py)."""
        m, rows, length = local_batch["news"]["input_ids"].shape
        layers, k = self.bert_config.num_hidden_layers, self.config.model.trainable_layers
        return flops.encoder_step_flops(
            self.bert_config,
            [(m * rows * self.feed.scale, length)],
            computed_layers=layers - self.cached_layers,
            trained_layers=layers if k < 0 else k,
        )

    def trainable_filter(self, num_layers: int):
        return optim.trainable_filter(num_layers, self.config.model.trainable_layers)

    @property
    def loss(self):
        return news_loss(self.cached_layers)

    def batches(self, start_step: int):
        c = self.config
        return train_batches(
            self.train.log,
            self.train.table,
            batch_size=c.train.batch_size,
            npratio=c.data.npratio,
            seed=c.seed,
            news_bucket=c.data.news_bucket,
            micro_batches=c.train.micro_batches,
            block=self.feed.block,
            start_batch=start_step,
        )

    def start(self, graphdef: nnx.GraphDef, states) -> None:
        """Compiles inference and runs the frozen bottom layers once per news item."""
        self.infer = evaluate.NewsInference(graphdef, self.feed)
        self.dev_cache = None
        if not self.cached_layers:
            return
        tick, bs = time.time(), self.config.train.eval_batch_size
        train_cache = evaluate.lower_cache(
            self.infer, states, self.train.table, self.cached_layers, bs
        )
        self.dev_cache = evaluate.lower_cache(
            self.infer, states, self.dev.table, self.cached_layers, bs
        )
        self.extra = train_cache.hidden
        log.info(
            "frozen layers 0-%d computed once per news item in %.1f s",
            self.cached_layers - 1,
            time.time() - tick,
        )

    def evaluate(self, states) -> dict[str, float]:
        bs = self.config.train.eval_batch_size
        scores = evaluate.score_split(
            self.infer, states, self.dev.table, self.dev.log, bs, self.dev_cache
        )
        return evaluate.ranking_metrics(scores, self.dev.log.labels)

    def summary(self) -> dict[str, Any]:
        return {
            "baseline": popularity_baseline(self.train, self.dev),
            "baseline_name": "popularity baseline",
            "unknown_news_share": {
                "train": self.train.unknown_share,
                "dev": self.dev.unknown_share,
            },
        }


def check_one_batch(samples: int, config: ml_collections.ConfigDict) -> None:
    """Raises DataError, before any model is built, when training cannot fill one batch."""
    batch = int(config.train.batch_size)
    if samples < batch:
        raise DataError(
            f"{samples} training samples (one per click in an impression that also has a "
            f"non-click), fewer than one batch (train.batch_size={batch})",
            path=str(Path(config.data.dir) / "train" / BEHAVIORS_FILE),
        )
