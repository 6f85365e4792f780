"""Encoding whole token tables (every news item, user or item text) once, in length order.

Both tasks encode tables the same way: for a frozen-layer cache (each row's hidden states
after the frozen bottom layers, computed once per run) and for evaluation (each row's vector,
computed once per evaluation). Rows go in length-sorted batches cut to a few widths, so short
texts cost what they hold.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.data.pipeline import length_sorted_batches
from jaxrec.sharding import Feed, padded_rows, row_sharding, take_rows


def cached_rows(cache: jax.Array, rows: jax.Array, mask: jax.Array) -> jax.Array:
    """The cache's hidden states [B, W, H] for `rows`, cut to the mask's width W."""
    return take_rows(cache, rows, mask.shape[1])


def table_hidden(
    feed: Feed, tokens: dict[str, np.ndarray], batch_size: int, lower: Callable, stop: int
) -> jax.Array:
    """[rows, L, H]: every row's hidden states after layers [0, stop) (`lower(tokens, stop)`),
    in the compute dtype, split by rows over the mesh's batch axes: each device holds its
    share, so the memory a cache takes per device falls as devices are added.

    Rows are encoded in length-sorted batches at a few widths; positions past a batch's width
    are padding and stay zero, as do the rows added so that the table splits evenly. Each
    batch is written into place on the devices that hold its rows.
    """
    n, width = tokens["attention_mask"].shape
    total = padded_rows(n, feed.mesh)
    hidden = None
    for batch in length_sorted_batches(tokens, batch_size):
        part = lower(feed.put({k: batch[k] for k in tokens}), stop)
        if hidden is None:
            hidden = _zeros_like_rows(feed, (total, width, *part.shape[2:]), part.dtype)
        rows = np.where(batch["valid"], batch["rows"], total)  # padding rows: dropped
        hidden = _write_rows(hidden, part, feed.replicate(rows))
    return jax.block_until_ready(hidden)


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(hidden: jax.Array, part: jax.Array, rows: jax.Array) -> jax.Array:
    """hidden[rows, :width] = part, in place; out-of-range rows are dropped."""
    return hidden.at[rows, : part.shape[1]].set(part, mode="drop")


def _zeros_like_rows(feed: Feed, shape: tuple[int, ...], dtype) -> jax.Array:
    out = {"out_shardings": row_sharding(feed.mesh)} if feed.mesh is not None else {}
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
    `encode_from(lower, rows, mask, start)` runs only the layers from `start` on.
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
