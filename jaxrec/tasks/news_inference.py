"""Inference for the news model: each news item and each distinct history encoded once.

All news vectors are computed first (length-sorted batches over the news table), then one
user vector per distinct history, then every impression is scored with dot products.
Nothing is re-encoded per impression.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import numpy as np
from flax import nnx

from jaxrec import metrics
from jaxrec.data.news_table import NewsTable
from jaxrec.data.pipeline import ClickLog, padded_batches
from jaxrec.sharding import Feed
from jaxrec.tasks.table_encoding import cached_rows, table_hidden, table_vectors

# Impressions scored at a time: bounds the memory of scoring (a padded [CHUNK, candidates]
# array), whatever the size of the split.
CHUNK = 8192


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


class UserVectors:
    """User vectors of click histories, each distinct history encoded once.

    Called on successive parts of a split (a chunk of impressions at a time, so that nothing
    the size of the split is held at once), it remembers every history it has encoded: a
    user seen in an earlier chunk costs a lookup, not an encoding.
    """

    def __init__(self, fns: NewsInference, states, news_vecs: np.ndarray, batch_size: int):
        self.fns, self.states, self.batch_size = fns, states, batch_size
        self.news = fns.feed.replicate(news_vecs)
        self.index: dict[bytes, int] = {}  # history digest -> its row of `self.rows`
        self.parts: list[np.ndarray] = []
        self.rows = np.zeros((0, news_vecs.shape[1]), np.float32)

    def __call__(self, log: ClickLog) -> np.ndarray:
        """[len(log), D]: the user vector of each impression's (clipped) history."""
        keys = np.concatenate([log.history, log.history_mask], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        # A 128-bit digest names each history: a dictionary of millions of users stays small.
        names = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in unique]
        new = [i for i, name in enumerate(names) if name not in self.index]
        if new:
            self._encode(unique[new], [names[i] for i in new])
        where = np.fromiter((self.index[name] for name in names), np.int64, len(names))
        return self.rows[where[inverse.reshape(-1)]]

    def _encode(self, keys: np.ndarray, names: list[bytes]) -> None:
        h = keys.shape[1] // 2
        arrays = {"history": keys[:, :h], "history_mask": keys[:, h:]}
        feed, out = self.fns.feed, []
        for batch in padded_batches(arrays, self.batch_size):
            put = feed.put({k: batch[k] for k in arrays})
            users = self.fns.users(self.states, self.news, put["history"], put["history_mask"])
            out.append(feed.get(users)[batch["valid"]])
        start = len(self.rows)
        self.rows = np.concatenate([self.rows, *out]).astype(np.float32, copy=False)
        self.index.update((name, start + i) for i, name in enumerate(names))


def impression_scores(users: np.ndarray, news_vecs: np.ndarray, log: ClickLog) -> list[np.ndarray]:
    """Each impression's candidate scores, in the listed order."""
    return [news_vecs[c] @ u for u, c in zip(users, log.candidates, strict=True)]


def chunks(log: ClickLog, size: int) -> Iterator[ClickLog]:
    """Consecutive parts of `size` impressions (the last may be shorter)."""
    for start in range(0, len(log), size):
        part = slice(start, start + size)
        labels = log.labels[part] if log.labels is not None else None
        yield ClickLog(log.history[part], log.history_mask[part], log.candidates[part], labels)


def split_scores(
    fns: NewsInference,
    states,
    table: NewsTable,
    parts: Iterable[tuple[Any, ClickLog]],
    batch_size: int,
    cache: LowerCache | None = None,
) -> Iterator[tuple[Any, list[np.ndarray]]]:
    """(tag, its impressions' scores) for each (tag, part) of a split, in order.

    Every news item of the table is encoded once, then each distinct history once; only one
    part's scores are held at a time. A tag rides along with its part (its labels, its
    impression IDs).
    """
    news_vecs = news_vectors(fns, states, table, batch_size, cache)
    users = UserVectors(fns, states, news_vecs, batch_size)
    for tag, log in parts:
        yield tag, impression_scores(users(log), news_vecs, log)


def score_split(
    fns: NewsInference,
    states,
    table: NewsTable,
    log: ClickLog,
    batch_size: int,
    cache: LowerCache | None = None,
) -> list[np.ndarray]:
    """Scores of every impression of a split (news and users each encoded once)."""
    parts = split_scores(fns, states, table, [(None, log)], batch_size, cache)
    return [s for _, scores in parts for s in scores]


def evaluate_split(
    fns: NewsInference,
    states,
    table: NewsTable,
    log: ClickLog,
    batch_size: int,
    cache: LowerCache | None = None,
    chunk: int = CHUNK,
) -> dict[str, float]:
    """MIND's metrics over a labelled split, scored `chunk` impressions at a time."""
    parts = ((part.labels, part) for part in chunks(log, chunk))
    return metrics.average_rows(
        metrics.impression_rows(scores, labels)
        for labels, scores in split_scores(fns, states, table, parts, batch_size, cache)
    )
