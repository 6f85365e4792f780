"""Inference for the news model: each news item and each distinct history encoded once.

All news vectors are computed first (length-sorted batches over the news table), then one
user vector per distinct history, then every impression is scored with dot products.
Nothing is re-encoded per impression.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from jaxrec.data.news_table import NewsTable
from jaxrec.data.pipeline import ClickLog, padded_batches
from jaxrec.sharding import Feed
from jaxrec.tasks.table_encoding import cached_rows, table_hidden, table_vectors


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
