"""What each news training step encodes: its distinct news items, in groups of a few widths.

A step's news items are placed in a `Layout`: groups of fixed token widths (some of
`length_buckets(title_len)`) with fixed row capacities, planned once per run from the first
batches, so the training step compiles once. Each item goes to the narrowest group that
holds its text and has room. Items that find no room go to the widest group, which then
grows by `bucket` rows (another shape, rare by construction). Positions a group drops are
padding for every item in it, which attention and pooling mask out, so the vectors equal
those of a full-width encoding.

With the history cache on (`refresh` > 0), the step reads the vectors of history-only news
items from a cache of every training news item's latest vector (SpeedyFeed's idea), without
gradient. Candidates are always encoded, with gradient. A history item is re-encoded when
its cached vector is `refresh` micro-batches old or older, stalest first, as long as the
layout has room; the rest read the cache. The cache starts filled by the starting model and
counted as stale. The ages live here (the host decides what is encoded) and, as the same
function of the batches, on the devices (`news_cache_write`), where checkpoints keep them.

Numpy only: the GPU benchmark builds its batches with this module, without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np

# Capacities are multiples of this (and of the batch shards): a few rows more per group.
ROW_GRANULE = 8


@dataclasses.dataclass(frozen=True)
class Layout:
    """Token widths of the groups (ascending; the last is the table's) and rows per group.

    The widest group grows by multiples of `bucket` rows when a micro-batch's items do not
    fit; `full_width` (capacity 0) is encoding every item at the table's width, padded to a
    multiple of `bucket`.
    """

    widths: tuple[int, ...]
    capacities: tuple[int, ...]
    bucket: int

    @classmethod
    def full_width(cls, width: int, bucket: int) -> Layout:
        return cls((width,), (0,), bucket)


@dataclasses.dataclass
class StepCounts:
    """Per micro-batch of a simulated run: rows that must be encoded and rows that may be,
    by the narrowest group that holds them ([micro-batches, groups])."""

    required: list[np.ndarray] = dataclasses.field(default_factory=list)
    optional: list[np.ndarray] = dataclasses.field(default_factory=list)


class BatchBuilder:
    """Turns each step's samples into the rows to encode, by group, and indices into them.

    `lengths[r]` is table row r's text length in tokens. `age` (with `refresh` > 0) is each
    table row's cache age in micro-batches; it starts at `refresh` (stale) unless given
    (a resumed run passes the checkpoint's).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        layout: Layout,
        *,
        refresh: int = 0,
        age: np.ndarray | None = None,
    ) -> None:
        self.layout = layout
        self.widths = np.asarray(layout.widths)
        self.natural = np.searchsorted(self.widths, lengths).astype(np.int32)
        if self.natural.max(initial=0) >= len(self.widths):
            raise ValueError(f"a text is longer than the widest group ({layout.widths[-1]})")
        self.refresh = refresh
        n = len(lengths)
        if refresh:
            self.age = np.full(n, refresh, np.int32) if age is None else np.array(age, np.int32)
        else:
            self.age = None
        self._position = np.full(n, -1, np.int64)

    def step(
        self, history: np.ndarray, history_mask: np.ndarray, candidates: np.ndarray
    ) -> dict[str, object]:
        """Samples stacked as [micro-batches, samples, ...] (table rows) -> the global step.

        Returns `rows`: per group, the table rows it encodes [m, R] (row 0, the empty news
        item, pads); `history` and `candidates`: indices into the groups' vectors in order,
        or, for history items read from the cache, `E + table row` where E is the number of
        encoded rows (sum of R).
        """
        micro = zip(history, history_mask, candidates, strict=True)
        placed = [self._place(h, k, c) for h, k, c in micro]
        sizes = list(self.layout.capacities)
        spill = max(sum(len(p) for p in groups[-1]) for groups in placed) - sizes[-1]
        sizes[-1] += _round_up(max(spill, 0), self.layout.bucket)
        encoded = sum(sizes)
        rows = [np.zeros((len(placed), size), np.int32) for size in sizes]
        hist_index = np.zeros(history.shape, np.int32)
        cand_index = np.zeros(candidates.shape, np.int32)
        offsets = np.cumsum([0, *sizes[:-1]])
        for i, groups in enumerate(placed):
            members = []
            for g, parts in enumerate(groups):
                chosen = np.concatenate(parts) if parts else np.zeros(0, np.int32)
                rows[g][i, : len(chosen)] = chosen
                members.append((chosen, offsets[g] + np.arange(len(chosen))))
            hist_index[i], cand_index[i] = self._indices(
                members, history[i], history_mask[i], candidates[i], encoded
            )
        keep = [g for g, size in enumerate(sizes) if size]
        return {
            "rows": [rows[g] for g in keep],
            "widths": [int(self.widths[g]) for g in keep],
            "history": hist_index,
            "history_mask": history_mask,
            "candidates": cand_index,
        }

    def _place(self, history, mask, candidates) -> list[list[np.ndarray]]:
        """One micro-batch's rows by group (lists of arrays); advances the ages."""
        required, optional = self.split(history, mask, candidates)
        free = list(self.layout.capacities)
        groups = _place_required(required, self.natural[required], free)
        _place_optional(optional, self.natural, free, groups)
        self._advance([part for parts in groups for part in parts])
        return groups

    def split(self, history, mask, candidates) -> tuple[np.ndarray, np.ndarray]:
        """(rows that must be encoded, stale history rows that may be, stalest first).

        Without the cache every distinct row must be. With it, the candidates must, and so
        must row 0 (the empty news item, which the cache never holds) if a history has it.
        """
        cands = np.unique(candidates)
        clicked = np.unique(history[mask > 0])
        if self.age is None:
            return np.union1d(cands, clicked), np.zeros(0, np.int32)
        only = np.setdiff1d(clicked, cands, assume_unique=True)
        stale = only[(self.age[only] >= self.refresh) & (only != 0)]
        required = np.union1d(cands, only[only == 0])
        return required, stale[np.lexsort((stale, -self.age[stale]))]

    def _advance(self, encoded: list[np.ndarray]) -> None:
        """Ages after a micro-batch: one more for every row, 0 for the rows just encoded."""
        if self.age is None:
            return
        self.age += 1
        for part in encoded:
            self.age[part[part != 0]] = 0

    def _indices(self, members, history, mask, candidates, encoded: int):
        position = self._position
        for chosen, where in members:
            position[chosen] = where
        try:
            hist = position[history]
            cached = (hist < 0) & (mask > 0)
            hist = np.where(cached, encoded + history, np.where(mask > 0, hist, 0))
            cands = position[candidates]
            if (cands < 0).any():
                raise AssertionError("a candidate was not placed")  # _place requires them all
        finally:
            for chosen, _ in members:
                position[chosen] = -1
        return hist, cands


def _place_required(rows: np.ndarray, natural: np.ndarray, free: list[int]) -> list[list]:
    """Every row in the narrowest group with room that holds it; the widest group takes the
    rest beyond its capacity. Widest texts first, which places as many as any order could."""
    k = len(free)
    groups: list[list[np.ndarray]] = [[] for _ in range(k)]
    for g in range(k - 1, -1, -1):
        mine = rows[natural == g]
        for h in range(g, k):
            if not len(mine):
                break
            take = min(free[h], len(mine))
            if take:
                groups[h].append(mine[:take])
                free[h] -= take
                mine = mine[take:]
        if len(mine):
            groups[k - 1].append(mine)
    return groups


def _place_optional(rows: np.ndarray, natural: np.ndarray, free: list[int], groups) -> None:
    """Rows in their order, each in the narrowest group with room that holds it, until full."""
    k = len(free)
    for r in rows:
        g = natural[r]
        while g < k and not free[g]:
            g += 1
        if g < k:
            groups[g].append(np.array([r], np.int32))
            free[g] -= 1
            if not any(free):
                return


def simulate(
    lengths: np.ndarray,
    widths: tuple[int, ...],
    micro_batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    refresh: int = 0,
) -> StepCounts:
    """Counts per micro-batch of the rows a step must and may encode, by narrowest group,
    with room for all (stale history rows are re-encoded as soon as they show up)."""
    builder = BatchBuilder(lengths, Layout(tuple(widths), (0,) * len(widths), 1), refresh=refresh)
    k = len(widths)
    counts = StepCounts()
    for history, mask, candidates in micro_batches:
        required, optional = builder.split(history, mask, candidates)
        builder._advance([required, optional])
        counts.required.append(np.bincount(builder.natural[required], minlength=k))
        counts.optional.append(np.bincount(builder.natural[optional], minlength=k))
    return counts


def plan_layout(
    counts: StepCounts,
    widths: tuple[int, ...],
    *,
    bucket: int,
    shards: int = 1,
    quantile: float = 0.99,
    min_share: float = 0.125,
) -> Layout:
    """Capacities that hold a micro-batch's rows in `quantile` of the simulated micro-batches.

    Rows that need at least width w fit when the groups of width w and wider hold them
    together, so capacities are set from the top: the rows needing each width or more, at the
    quantile. With a history cache, the optional (stale) rows count at their mean, after the
    first half of the simulation (the cache starts all stale). A group narrower than the
    widest keeps its width only if it holds `min_share` of the rows; else its rows move up.
    """
    granule = math.lcm(ROW_GRANULE, shards)
    required = np.asarray(counts.required)
    optional = np.asarray(counts.optional)
    k = len(widths)
    # req_up[s, g]: required rows of micro-batch s that need group g or a wider one
    req_up = np.cumsum(required[:, ::-1], axis=1)[:, ::-1]
    cum = np.quantile(req_up, quantile, axis=0)
    if optional.any():
        steady = len(optional) // 2
        opt_up = np.cumsum(optional[steady:, ::-1], axis=1)[:, ::-1]
        cum = np.maximum(cum, np.mean(req_up[steady:] + opt_up, axis=0))
    rounded = np.array([_round_up(int(np.ceil(c)), granule) for c in cum])
    cum = np.append(np.maximum.accumulate(rounded[::-1])[::-1], 0)  # non-increasing
    caps = [int(cum[g] - cum[g + 1]) for g in range(k)]
    total = max(sum(caps), 1)
    kept_widths, kept_caps = [], []
    carry = 0
    for g in range(k):
        cap = caps[g] + carry
        if g < k - 1 and cap < min_share * total:
            carry = cap  # too few rows for a group of its own: encoded at the next width
            continue
        kept_widths.append(int(widths[g]))
        kept_caps.append(int(cap))
        carry = 0
    return Layout(tuple(kept_widths), tuple(kept_caps), bucket)


def prefetch(iterator: Iterator, size: int = 2) -> Iterator:
    """`iterator`'s items, produced `size` ahead on a background thread, in order."""
    items: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            items.put(e)

    thread = threading.Thread(target=produce, daemon=True, name="news-batches")
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
