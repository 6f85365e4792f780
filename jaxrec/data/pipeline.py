"""Training input: integer samples, each batch's distinct texts once, each process its part.

A news training sample is one clicked candidate and K non-clicked candidates of the same
impression (the positive first; the model is order-blind) plus the user's last `history_len`
clicks. Samples are drawn per epoch with numpy from `seed + epoch`, so epoch e is the same
on every process and every run. Each step's distinct news items are encoded once, in groups
of a few token widths (jaxrec/data/news_batches.py, numpy on a background thread); the pair
models' batches are deduplicated in tf.data. Each process then keeps its own part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from jaxrec.data.mind import Impression
from jaxrec.data.news_batches import BatchBuilder, Layout, prefetch
from jaxrec.data.news_table import NewsTable
from jaxrec.sharding import local_rows


@dataclasses.dataclass(frozen=True)
class ClickLog:
    """Impressions as integer arrays: histories [n, H] + mask, candidates and labels (ragged)."""

    history: np.ndarray  # [n, H] rows into the news table, most recent clicks, 0-padded
    history_mask: np.ndarray  # [n, H]
    candidates: list[np.ndarray]  # per impression, rows into the news table
    labels: list[np.ndarray] | None  # per impression, 0/1; None when unlabelled

    def __len__(self) -> int:
        return len(self.history)


def click_log(impressions: Sequence[Impression], table: NewsTable, history_len: int) -> ClickLog:
    """Maps news IDs to table rows; histories clipped to their `history_len` latest clicks."""
    n = len(impressions)
    history = np.zeros((n, history_len), np.int32)
    mask = np.zeros((n, history_len), np.int32)
    for i, imp in enumerate(impressions):
        clicks = imp.history[-history_len:] if history_len else ()
        history[i, : len(clicks)] = table.rows(clicks)
        mask[i, : len(clicks)] = 1
    candidates = [table.rows(imp.candidates) for imp in impressions]
    labelled = all(imp.labels is not None for imp in impressions)
    labels = [np.asarray(imp.labels, np.int32) for imp in impressions] if labelled else None
    return ClickLog(history, mask, candidates, labels)


def sample_plan(log: ClickLog, npratio: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of samples, shuffled by `seed`: each one's impression row in `log` and its
    candidates (1 positive + `npratio` negatives), [S] and [S, 1 + npratio].

    Negatives are drawn without replacement when the impression has enough, else with
    replacement (as MIND's reference code does). Impressions without a click or without a
    non-click give no samples. Histories stay in `log` and are gathered batch by batch: at
    MIND-large size an epoch's copy of them would be 3.4M x 50 indices and masks.
    """
    if log.labels is None:
        raise ValueError("training needs labelled impressions")
    rng = np.random.default_rng(seed)
    rows, cands = [], []
    for i, (c, y) in enumerate(zip(log.candidates, log.labels, strict=True)):
        pos, neg = c[y == 1], c[y == 0]
        if not len(pos) or not len(neg):
            continue
        if len(neg) >= npratio:
            picks = np.argsort(rng.random((len(pos), len(neg))), axis=1)[:, :npratio]
        else:
            picks = rng.integers(0, len(neg), (len(pos), npratio))
        rows.append(np.full(len(pos), i, np.int32))
        cands.append(np.concatenate([pos[:, None], neg[picks]], axis=1))
    rows_arr = np.concatenate(rows) if rows else np.zeros(0, np.int32)
    cand_arr = np.concatenate(cands) if cands else np.zeros((0, npratio + 1), np.int32)
    order = rng.permutation(len(rows_arr))
    return rows_arr[order], cand_arr[order].astype(np.int32)


def gather_samples(log: ClickLog, rows: np.ndarray, candidates: np.ndarray) -> dict[str, Any]:
    """The samples of `sample_plan` rows with their histories: history, history_mask and
    candidates."""
    return {
        "history": log.history[rows],
        "history_mask": log.history_mask[rows],
        "candidates": candidates,
    }


def train_samples(log: ClickLog, npratio: int, seed: int) -> dict[str, np.ndarray]:
    """One whole epoch of `sample_plan` with its histories (for benchmarks and tests)."""
    return gather_samples(log, *sample_plan(log, npratio, seed))


def count_train_samples(log: ClickLog) -> int:
    """Samples per epoch: one per click in impressions that also have a non-click."""
    if log.labels is None:
        raise ValueError("training needs labelled impressions")
    return sum(int(y.sum()) for y in log.labels if 0 < y.sum() < len(y))


def train_batches(
    log: ClickLog,
    table: NewsTable,
    *,
    batch_size: int,
    npratio: int,
    seed: int,
    news_bucket: int,
    micro_batches: int = 1,
    block: tuple[int, int, int] = (0, 1, 1),
    start_batch: int = 0,
    layout: Layout | None = None,
    history_cache: int = 0,
    age: np.ndarray | None = None,
) -> Iterator[dict[str, Any]]:
    """Endless training batches, each `micro_batches` stacked micro-batches [m, ...].

    A micro-batch holds `batch_size // micro_batches` samples and `news`: a tuple of groups,
    each the table rows [R] of the news items it encodes and their tokens [R, width], placed
    by `layout` (jaxrec/data/news_batches.py; by default every item at the table's width, the
    rows padded to a multiple of `news_bucket`); `history` and `candidates` index into the
    groups' vectors in order. With `history_cache` = N > 0, history items whose cached vector
    is younger than N steps are read from the cache (`age`: each row's cache age in
    micro-batches, by default all stale).

    Every process computes the same global layout from integers; `block` = (lo, hi, n) keeps
    parts lo..hi-1 of n of every group's rows and of the samples (indices stay global), and
    only those rows' tokens are gathered. Built on a background thread, two steps ahead.
    """
    micro = batch_size // micro_batches  # config_checks.check_batch_split: it divides
    per_epoch = count_train_samples(log) // batch_size
    if not per_epoch:
        raise ValueError(f"fewer training samples than one batch of {batch_size}")
    width = table.tokens["input_ids"].shape[1]
    builder = BatchBuilder(
        text_lengths(table.tokens["attention_mask"]),
        layout or Layout.full_width(width, news_bucket),
        refresh=history_cache * micro_batches,
        age=age,
    )

    def steps() -> Iterator[dict[str, Any]]:
        # Batch b of the run is batch b % per_epoch of epoch b // per_epoch: a resumed run
        # regenerates that epoch and skips to it, so it sees exactly the batches it would have.
        epoch, skip = divmod(start_batch, per_epoch)
        while True:
            rows, candidates = sample_plan(log, npratio, seed + epoch)
            for b in range(skip, per_epoch):
                part = slice(b * batch_size, (b + 1) * batch_size)
                part = {
                    k: v.reshape(micro_batches, micro, *v.shape[1:])
                    for k, v in gather_samples(log, rows[part], candidates[part]).items()
                }
                step = builder.step(part["history"], part["history_mask"], part["candidates"])
                yield _local_news_step(step, table.tokens, block)
            epoch, skip = epoch + 1, 0

    return prefetch(steps())


def micro_batch_samples(
    log: ClickLog, *, batch_size: int, npratio: int, seed: int, count: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(history, history_mask, candidates) of the first `count` batches of `batch_size`."""
    per_epoch = max(count_train_samples(log) // batch_size, 1)
    for b in range(count):
        epoch, i = divmod(b, per_epoch)
        if i == 0:
            rows, candidates = sample_plan(log, npratio, seed + epoch)
        part = slice(i * batch_size, (i + 1) * batch_size)
        s = gather_samples(log, rows[part], candidates[part])
        yield s["history"], s["history_mask"], s["candidates"]


def _local_news_step(step, tokens: dict[str, np.ndarray], block) -> dict[str, Any]:
    """This process's part (axis 1) of a step's groups and samples, with its rows' tokens."""
    news = []
    for rows, width in zip(step["rows"], step["widths"], strict=True):
        part = local_rows(rows, block, axis=1)
        news.append({"rows": part} | {k: v[:, :width][part] for k, v in tokens.items()})
    samples = {k: local_rows(step[k], block, axis=1) for k in ("history", "history_mask")}
    return {"news": tuple(news), "candidates": local_rows(step["candidates"], block, axis=1)} | (
        samples
    )


def _unique_padded(rows, bucket: int):
    """(distinct rows padded with row 0 to a multiple of `bucket`, index of each input row)."""
    unique, index = tf.unique(tf.reshape(rows, [-1]))
    n = tf.shape(unique)[0]
    padded = tf.concat([unique, tf.zeros([(-n) % bucket], unique.dtype)], axis=0)
    return padded, tf.reshape(index, tf.shape(rows))


def _local_part(batch, tables, block: tuple[int, int, int]):
    """This process's part (axis 1) of stacked micro-batches, with the tokens of its rows.

    `tables` maps an output key to (the batch key of its table rows, the token arrays).
    """
    lo, hi, n = block

    def part(x):
        size = tf.shape(x)[1] // n
        return x[:, lo * size : hi * size]

    out = {}
    for key, (rows_key, tokens) in tables.items():
        rows = part(batch[rows_key])
        out[key] = {"rows": rows} | {k: tf.gather(v, rows) for k, v in tokens.items()}
    used = {rows_key for rows_key, _ in tables.values()}
    return out | {k: part(v) for k, v in batch.items() if k not in used}


def padded_batches(
    arrays: dict[str, np.ndarray], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Every row exactly once, in fixed-size batches with a `valid` mask.

    Rows are padded (with copies of row 0, marked invalid) to a multiple of `batch_size`. These
    are global batches: with many processes each feeds its part of every batch to its devices
    (`sharding.Feed`), so every process runs the same number of batches.
    """
    n = len(next(iter(arrays.values())))
    total = -(-max(n, 1) // batch_size) * batch_size
    pad = total - n
    padded = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in arrays.items()}
    padded["valid"] = np.concatenate([np.ones(n, bool), np.zeros(pad, bool)])
    for start in range(0, total, batch_size):
        yield {k: v[start : start + batch_size] for k, v in padded.items()}


def length_buckets(width: int) -> tuple[int, ...]:
    """The few token widths tables are encoded at: multiples of about width / 6, and width.

    Each width is one more compiled shape, so there are at most seven (24 -> 4, 8, ..., 24).
    """
    step = max(4, -(-width // 24) * 4)
    return (*range(step, width, step), width)


def text_lengths(mask: np.ndarray) -> np.ndarray:
    """[rows]: one past each row's last attended token (0 for an empty row)."""
    last = mask.shape[1] - np.argmax(mask[:, ::-1] != 0, axis=1)
    return np.where(mask.any(axis=1), last, 0)


def length_sorted_batches(
    tokens: dict[str, np.ndarray], batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Every row of a token table exactly once, shortest first, each batch cut to the narrowest
    of `length_buckets` that holds its longest row.

    Trailing positions a batch drops are padding of every row in it, which attention and
    pooling mask out anyway, so outputs are those of full-width batches. `rows` names each
    row's table row; `valid` marks the padding rows of the last batch as in `padded_batches`.
    The order depends only on the table: every process runs the same batches.
    """
    mask = tokens["attention_mask"]
    lengths = text_lengths(mask)
    widths = length_buckets(mask.shape[1])
    order = np.argsort(lengths, kind="stable").astype(np.int32)
    for batch in padded_batches({"rows": order}, batch_size):
        rows = batch["rows"]
        need = int(lengths[rows].max())
        width = next(w for w in widths if w >= need)
        yield {"rows": rows, "valid": batch["valid"]} | {
            k: v[rows, :width] for k, v in tokens.items()
        }


def pair_batches(
    arrays: dict[str, np.ndarray],
    user_tokens: dict[str, np.ndarray],
    item_tokens: dict[str, np.ndarray],
    *,
    batch_size: int,
    seed: int,
    bucket: int,
    micro_batches: int = 1,
    block: tuple[int, int, int] = (0, 1, 1),
    start_batch: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless training batches of (user, item) pairs, `micro_batches` stacked [m, ...].

    `arrays` holds per pair `user_rows` and `item_rows` (rows of the token tables),
    `user_id`, `item_id` and `targets`. A micro-batch carries `users` and `items`: its
    distinct texts once each (padded to a multiple of `bucket`), with `user_index` and
    `item_index` pointing into them. Epoch e is a permutation drawn from `seed + e`, so a
    resumed run regenerates its batches; `block` works as in `train_batches`.
    """
    micro = batch_size // micro_batches  # config_checks.check_batch_split: it divides
    n = len(arrays["targets"])
    per_epoch = n // batch_size
    if not per_epoch:
        raise ValueError(f"fewer training pairs ({n}) than one batch of {batch_size}")
    tables = {
        "users": ("user_rows", {k: tf.constant(v) for k, v in user_tokens.items()}),
        "items": ("item_rows", {k: tf.constant(v) for k, v in item_tokens.items()}),
    }
    epoch, skip = divmod(start_batch, per_epoch)
    while True:
        order = np.random.default_rng(seed + epoch).permutation(n)[: per_epoch * batch_size]
        ds = tf.data.Dataset.from_tensor_slices({k: v[order] for k, v in arrays.items()})
        ds = ds.batch(micro).skip(skip * micro_batches)
        ds = ds.map(lambda b: _dedup_pairs(b, bucket), num_parallel_calls=2)
        ds = ds.padded_batch(micro_batches)
        ds = ds.map(lambda b: _local_part(b, tables, block), num_parallel_calls=2)
        yield from ds.prefetch(2).as_numpy_iterator()
        epoch, skip = epoch + 1, 0


def _dedup_pairs(batch, bucket: int):
    users, user_index = _unique_padded(batch["user_rows"], bucket)
    items, item_index = _unique_padded(batch["item_rows"], bucket)
    return {
        "user_rows": users,
        "item_rows": items,
        "user_index": user_index,
        "item_index": item_index,
    } | {k: batch[k] for k in ("user_id", "item_id", "targets")}
