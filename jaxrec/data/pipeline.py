"""tf.data input for the news model: integer samples, deduplicated news per batch.

A training sample is one clicked candidate and K non-clicked candidates of the same
impression (the positive first; the model is order-blind) plus the user's last `history_len`
clicks. Samples are drawn per epoch with numpy from `seed + epoch`, so epoch e is the same
on every process and every run; each process then keeps its own shard. After batching, the
news indices of the batch are deduplicated so the step encodes each news item once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from jaxrec.data.mind import Impression
from jaxrec.data.news_table import NewsTable


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


def train_samples(log: ClickLog, npratio: int, seed: int) -> dict[str, np.ndarray]:
    """One epoch of (history, 1 positive + `npratio` negatives) samples, shuffled by `seed`.

    Negatives are drawn without replacement when the impression has enough, else with
    replacement (as MIND's reference code does). Impressions without a click or without a
    non-click give no samples.
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
    rows_arr, cand_arr = rows_arr[order], cand_arr[order]
    return {
        "history": log.history[rows_arr],
        "history_mask": log.history_mask[rows_arr],
        "candidates": cand_arr.astype(np.int32),
    }


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
    process_index: int = 0,
    process_count: int = 1,
    start_batch: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless per-process batches of `batch_size // process_count` samples (drop_remainder).

    Each batch carries `news`: the distinct news items' table rows [U] and tokens [U, L], with
    U padded up to a multiple of `news_bucket` (a few static shapes, so a few compilations),
    and `history`, `candidates` as indices into them.
    """
    if batch_size % process_count:
        raise ValueError(f"batch_size {batch_size} is not divisible by {process_count} processes")
    local = batch_size // process_count
    per_epoch = count_train_samples(log) // batch_size
    if not per_epoch:
        raise ValueError(f"fewer training samples than one batch of {batch_size}")
    tokens = {k: tf.constant(v) for k, v in table.tokens.items()}
    # Batch b of the run is batch b % per_epoch of epoch b // per_epoch: a resumed run
    # regenerates that epoch and skips to it, so it sees exactly the batches it would have.
    epoch, skip = divmod(start_batch, per_epoch)
    while True:
        samples = train_samples(log, npratio, seed + epoch)
        # Every process keeps the same number of whole batches.
        samples = {k: v[: per_epoch * batch_size] for k, v in samples.items()}
        ds = tf.data.Dataset.from_tensor_slices(samples)
        ds = ds.shard(process_count, process_index).batch(local, drop_remainder=True).skip(skip)
        ds = ds.map(lambda b: _dedup_news(b, tokens, news_bucket), num_parallel_calls=2)
        yield from ds.prefetch(2).as_numpy_iterator()
        epoch, skip = epoch + 1, 0


def _dedup_news(batch, tokens, bucket: int):
    """Replaces news rows by indices into the batch's distinct news items."""
    hist, cands = batch["history"], batch["candidates"]
    flat = tf.concat([tf.reshape(hist, [-1]), tf.reshape(cands, [-1])], axis=0)
    unique, local = tf.unique(flat)
    n = tf.shape(unique)[0]
    padded = tf.concat([unique, tf.zeros([(-n) % bucket], unique.dtype)], axis=0)
    split = tf.size(hist)
    return {
        "news": {"rows": padded} | {k: tf.gather(v, padded) for k, v in tokens.items()},
        "history": tf.reshape(local[:split], tf.shape(hist)),
        "history_mask": batch["history_mask"],
        "candidates": tf.reshape(local[split:], tf.shape(cands)),
    }


def padded_batches(
    arrays: dict[str, np.ndarray],
    batch_size: int,
    *,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Every row exactly once, in fixed-size batches with a `valid` mask.

    Rows are padded (with copies of row 0, marked invalid) to a multiple of
    `batch_size * process_count`, so every process runs the same number of batches.
    """
    n = len(next(iter(arrays.values())))
    total = -(-max(n, 1) // (batch_size * process_count)) * batch_size * process_count
    pad = total - n
    padded = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in arrays.items()}
    padded["valid"] = np.concatenate([np.ones(n, bool), np.zeros(pad, bool)])
    ds = tf.data.Dataset.from_tensor_slices(padded).shard(process_count, process_index)
    yield from ds.batch(batch_size, drop_remainder=True).prefetch(2).as_numpy_iterator()
