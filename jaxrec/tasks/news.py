"""PLM-NR news recommendation on MIND: data, model, loss, batches, evaluation, predictions.

Every news item is tokenized once into a table; a training batch carries each distinct
news item once. With only the top k encoder layers trained, the frozen layers below run
once per news item per run (a cache), not once per step. MIND's convention for splits:
`dev` is the labelled evaluation split (early stopping and the best checkpoint), `test` has
no labels and is only predicted.
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
from jaxrec.data.news_data import NewsSplit, load_split, split_folder, stream_split
from jaxrec.data.pipeline import count_train_samples, train_batches
from jaxrec.data.report import ReadReport
from jaxrec.errors import DataError
from jaxrec.models.bert import BertConfig, BertModel
from jaxrec.models.news import POOLINGS, USER_ENCODERS, NewsRecommender
from jaxrec.sharding import take_rows
from jaxrec.tasks import news_inference as infer
from jaxrec.tasks.base import Task

log = logging.getLogger(__name__)


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
    """loss(model, batch, cache, rngs): softmax over each sample's candidates.

    With `cached_layers` > 0 the news items' bottom layers come from `cache` (an array
    [news table rows, L, H]); otherwise `cache` is None and BERT runs whole.
    """

    def loss(model: NewsRecommender, batch, cache, rngs) -> jax.Array:
        if not cached_layers:
            return softmax_loss(model(batch, deterministic=False, rngs=rngs))
        news = batch["news"]
        hidden = take_rows(cache, news["rows"])
        vecs = model.encode_news_from(
            hidden, news["attention_mask"], cached_layers, deterministic=False, rngs=rngs
        )
        return softmax_loss(model.score_batch(vecs, batch, deterministic=False, rngs=rngs))

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
        """Compiles inference and runs the frozen bottom layers once per news item."""
        self.infer = infer.NewsInference(graphdef, self.env.feed)
        self.dev_cache = None
        if not self.cached_layers:
            return
        tick, bs = time.time(), self.config.train.eval_batch_size
        train_cache = infer.lower_cache(
            self.infer, states, self.train.table, self.cached_layers, bs
        )
        self.dev_cache = infer.lower_cache(
            self.infer, states, self.dev.table, self.cached_layers, bs
        )
        self.extra = train_cache.hidden
        log.info(
            "frozen layers 0-%d computed once per news item in %.1f s",
            self.cached_layers - 1,
            time.time() - tick,
        )

    # -- 4. Loss and 5. batches ------------------------------------------------------------------

    def loss(self, model, batch, extra, rngs) -> jax.Array:
        return news_loss(self.cached_layers)(model, batch, extra, rngs)

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
            block=self.env.feed.block,
            start_batch=start_step,
        )

    def step_flops(self, local_batch) -> float:
        m, rows, length = local_batch["news"]["input_ids"].shape
        layers, k = self.bert_config.num_hidden_layers, self.config.model.trainable_layers
        return flops.encoder_step_flops(
            self.bert_config,
            [(m * rows * self.env.feed.scale, length)],
            computed_layers=layers - self.cached_layers,
            trained_layers=layers if k < 0 else k,
        )

    # -- 6. Validation and 7. test -------------------------------------------------------------

    def higher_is_better(self, metric: str) -> bool:
        return True  # AUC, MRR, nDCG

    def evaluate(self, states) -> dict[str, float]:
        bs = self.config.train.eval_batch_size
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
