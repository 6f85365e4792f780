"""Dev evaluation and prediction for the news model: each news item and user encoded once.

All news vectors are computed first (fixed-size padded batches over the news table), then
one user vector per distinct history, then every impression is scored with dot products.
Nothing is re-encoded per impression.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec import metrics
from jaxrec.data.news_table import NewsTable
from jaxrec.data.pipeline import ClickLog, length_sorted_batches, padded_batches
from jaxrec.sharding import Feed


class NewsInference:
    """Jitted inference functions of a NewsRecommender graph, compiled once per shape.

    With a `feed` on a mesh, inputs arrive split over the batch axes and outputs come back
    replicated, so every process reads whole results.
    """

    def __init__(self, graphdef: nnx.GraphDef, feed: Feed | None = None) -> None:
        self.graphdef = graphdef
        self.feed = feed or Feed()
        out = {"out_shardings": self.feed.replicated} if self.feed.mesh is not None else {}

        def news(states, tokens):
            return nnx.merge(graphdef, *states).encode_news(tokens)

        def users(states, news_vecs, history, history_mask):
            return nnx.merge(graphdef, *states).encode_users(news_vecs, history, history_mask)

        def lower(states, tokens, stop):
            return nnx.merge(graphdef, *states).lower_hidden(tokens, stop)

        def news_from(states, cache, rows, mask, start):
            model = nnx.merge(graphdef, *states)
            return model.encode_news_from(cached_rows(cache, rows, mask), mask, start)

        self.news: Callable = jax.jit(news, **out)
        self.users: Callable = jax.jit(users, **out)
        self.lower: Callable = jax.jit(lower, static_argnums=2, **out)
        self.news_from: Callable = jax.jit(news_from, static_argnums=4, **out)


def cached_rows(cache: jax.Array, rows: jax.Array, mask: jax.Array) -> jax.Array:
    """The cache's hidden states [B, W, H] for `rows`, cut to the mask's width W."""
    return jnp.take(cache, rows, axis=0)[:, : mask.shape[1]]


@dataclasses.dataclass(frozen=True)
class LowerCache:
    """Every table row's hidden states after the frozen bottom `layers`, computed once.

    When fine-tuning only the top k layers, the layers below never change: their output per
    news item is computed once per run, and each step or evaluation runs only the top k.
    """

    layers: int
    hidden: jax.Array  # [len(table), L, H] in the compute dtype


def lower_cache(
    fns: NewsInference, states, table: NewsTable, layers: int, batch_size: int
) -> LowerCache:
    lower = functools.partial(fns.lower, states)
    return LowerCache(layers, table_hidden(fns.feed, table.tokens, batch_size, lower, layers))


def table_hidden(
    feed: Feed, tokens: dict[str, np.ndarray], batch_size: int, lower: Callable, stop: int
) -> jax.Array:
    """[rows, L, H]: every row's hidden states after layers [0, stop) (`lower(tokens, stop)`).

    Rows are encoded in length-sorted batches at a few widths; positions past a batch's width
    are padding and stay zero. Each batch is written into place on the device.
    """
    n, width = tokens["attention_mask"].shape
    hidden = None
    for batch in length_sorted_batches(tokens, batch_size):
        part = lower(feed.put({k: batch[k] for k in tokens}), stop)
        if hidden is None:
            hidden = _zeros_like_rows(feed, (n, width, *part.shape[2:]), part.dtype)
        rows = np.where(batch["valid"], batch["rows"], n)  # padding rows: dropped
        hidden = _write_rows(hidden, part, feed.replicate(rows))
    return jax.block_until_ready(hidden)


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(hidden: jax.Array, part: jax.Array, rows: jax.Array) -> jax.Array:
    """hidden[rows, :width] = part, in place; out-of-range rows are dropped."""
    return hidden.at[rows, : part.shape[1]].set(part, mode="drop")


def _zeros_like_rows(feed: Feed, shape: tuple[int, ...], dtype) -> jax.Array:
    out = {"out_shardings": feed.replicated} if feed.mesh is not None else {}
    return jax.jit(lambda: jnp.zeros(shape, dtype), **out)()


def table_vectors(
    feed: Feed,
    tokens: dict[str, np.ndarray],
    batch_size: int,
    encode: Callable,
    encode_from: Callable | None = None,
    lower: jax.Array | None = None,
    start: int = 0,
) -> np.ndarray:
    """[rows, D] float32: every row of a token table encoded once, in length-sorted batches.

    `encode(tokens)` runs the whole encoder; with a frozen-layer cache `lower` [rows, L, H],
    `encode_from(lower, rows, mask, start)` runs only the layers from `start` on. Batches
    are cut to a few widths (`length_sorted_batches`): short texts cost what they hold.
    """
    rows, parts = [], []
    for batch in length_sorted_batches(tokens, batch_size):
        if lower is None:
            vecs = encode(feed.put({k: batch[k] for k in tokens}))
        else:
            put = feed.put({"rows": batch["rows"], "mask": batch["attention_mask"]})
            vecs = encode_from(lower, put["rows"], put["mask"], start)
        rows.append(batch["rows"][batch["valid"]])
        parts.append(feed.get(vecs)[batch["valid"]])
    sorted_vecs = np.concatenate(parts).astype(np.float32)
    out = np.empty_like(sorted_vecs)
    out[np.concatenate(rows)] = sorted_vecs
    return out


def news_vectors(
    fns: NewsInference,
    states,
    table: NewsTable,
    batch_size: int,
    cache: LowerCache | None = None,
) -> np.ndarray:
    """[len(table), D] float32 vectors, row i for table row i."""
    return table_vectors(
        fns.feed,
        table.tokens,
        batch_size,
        functools.partial(fns.news, states),
        functools.partial(fns.news_from, states),
        cache.hidden if cache else None,
        cache.layers if cache else 0,
    )


def user_vectors(
    fns: NewsInference, states, news_vecs: np.ndarray, log: ClickLog, batch_size: int
) -> np.ndarray:
    """[len(log), D]: one encoding per distinct (clipped) history, shared by its impressions."""
    keys = np.concatenate([log.history, log.history_mask], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    h = log.history.shape[1]
    arrays = {"history": unique[:, :h], "history_mask": unique[:, h:]}
    vecs = fns.feed.replicate(news_vecs)
    out = []
    for batch in padded_batches(arrays, batch_size):
        put = fns.feed.put({k: batch[k] for k in arrays})
        users = fns.users(states, vecs, put["history"], put["history_mask"])
        out.append(fns.feed.get(users)[batch["valid"]])
    return np.concatenate(out)[inverse.reshape(-1)]


def impression_scores(users: np.ndarray, news_vecs: np.ndarray, log: ClickLog) -> list[np.ndarray]:
    """Each impression's candidate scores, in the listed order."""
    return [news_vecs[c] @ u for u, c in zip(users, log.candidates, strict=True)]


def pad_ragged(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged 1-D rows -> ([n, max_len] zero-padded, mask)."""
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width), np.float64)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


def ranking_metrics(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """MIND's per-impression AUC, MRR, nDCG@5 and nDCG@10, averaged over impressions."""
    s, mask = pad_ragged(scores)
    y, _ = pad_ragged(labels)
    return metrics.mind_metrics(y.astype(np.int32), s, mask)


def score_split(
    fns: NewsInference,
    states,
    table: NewsTable,
    log: ClickLog,
    batch_size: int,
    cache: LowerCache | None = None,
) -> list[np.ndarray]:
    """Scores of every impression of a split (news and users each encoded once)."""
    news_vecs = news_vectors(fns, states, table, batch_size, cache)
    users = user_vectors(fns, states, news_vecs, log, batch_size)
    return impression_scores(users, news_vecs, log)
