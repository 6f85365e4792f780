"""Inference for pair models: each user and item text encoded once, then the head per pair.

Two towers encode every row of the user and item tables once (from the frozen-layer cache
when there is one) and run only the head per pair; a cross-encoder reads each pair; a model
without text runs only the head.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.data.pipeline import padded_batches
from jaxrec.data.text_table import TextTable
from jaxrec.sharding import Feed
from jaxrec.tasks.table_encoding import cached_rows, table_hidden, table_vectors


def to_prediction(out: jax.Array, task: str, rating_range) -> jax.Array:
    """Head outputs -> predictions: the rating clipped to the range, or probabilities."""
    if task == "rating":
        lo, hi = rating_range
        return jnp.clip(out, lo, hi)
    return jax.nn.sigmoid(out)


class PairInference:
    """Jitted inference of a PairRecommender graph: text vectors once, then the head."""

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        feed: Feed,
        architecture: str,
        task: str,
        rating_range,
        *,
        use_text: bool = True,
    ) -> None:
        self.feed, self.architecture, self.use_text = feed, architecture, use_text
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
        pairs: dict[str, np.ndarray],
        batch_size: int,
        lower: dict[str, jax.Array] | None = None,
        start: int = 0,
    ) -> np.ndarray:
        """[n, K] float64 predictions for `pairs` (user_rows, item_rows, user_id, item_id)."""
        arrays = {k: pairs[k] for k in ("user_rows", "item_rows", "user_id", "item_id")}
        out = []
        if self.architecture == "two_tower" or not self.use_text:
            vecs = {
                name: self.feed.replicate(
                    self.vectors(states, table, batch_size, lower and lower[name], start)
                    if self.use_text
                    else np.zeros((len(table.tokens["input_ids"]), 1), np.float32)  # unread
                )
                for name, table in (("users", users), ("items", items))
            }
            for batch in padded_batches(arrays, batch_size):
                put = self.feed.put({k: batch[k] for k in arrays})
                pred = self.head(states, vecs["users"], vecs["items"], put)
                out.append(self.feed.get(pred)[batch["valid"]])
        else:
            for batch in padded_batches(arrays, batch_size):
                n = len(batch["valid"])
                both = {
                    "users": {k: v[batch["user_rows"]] for k, v in users.tokens.items()},
                    "items": {k: v[batch["item_rows"]] for k, v in items.tokens.items()},
                    "user_index": np.arange(n, dtype=np.int32),
                    "item_index": np.arange(n, dtype=np.int32),
                    "user_id": batch["user_id"],
                    "item_id": batch["item_id"],
                }
                out.append(self.feed.get(self.cross(states, self.feed.put(both)))[batch["valid"]])
        return np.concatenate(out).astype(np.float64)
