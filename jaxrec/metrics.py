"""MIND's official ranking metrics (AUC, MRR, nDCG@5, nDCG@10), vectorised over impressions.

The definitions are those of the MIND competition scorer, which scores each impression (its
candidates' 0/1 click labels and the model's scores) and averages each metric over impressions:

- AUC: the area under the ROC curve, a tied positive/negative pair counting one half (what
  ``sklearn.metrics.roc_auc_score`` computes). Here it comes from the Mann-Whitney rank sum
  with average ranks for ties, which is the same number.
- MRR: ``sum(y[order] / rank) / sum(y)`` with ``order`` the candidates by descending score.
- nDCG@k: ``dcg@k(y, score) / dcg@k(y, y)`` with ``dcg@k`` the sum over the top k of
  ``(2**y - 1) / log2(rank + 1)``.

One deliberate difference: the official scorer ranks with an unstable argsort, so tied scores
rank in an order that depends on the sort implementation. Here ties are broken
deterministically: among equal scores, the candidate listed earlier ranks higher (a stable
descending sort). AUC does not depend on this; MRR and nDCG do whenever a clicked and an
unclicked candidate tie.

Everything is numpy and loops over no impression, so scoring MIND's dev set (hundreds of
thousands of impressions) adds well under a second to an evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

NDCG_CUTOFFS = (5, 10)
METRIC_NAMES = ("auc", "mrr", *(f"ndcg@{k}" for k in NDCG_CUTOFFS))


def impression_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Scores one impression: ``{"auc", "mrr", "ndcg@5", "ndcg@10"}``.

    ``labels`` holds each candidate's 0/1 click label and ``scores`` the model's scores, both of
    shape ``[num_candidates]``. Ties rank the earlier candidate first (see the module docstring).
    AUC is NaN when every candidate was clicked, since no negative exists to rank against.

    Raises:
      ValueError: when no candidate was clicked (MRR and nDCG divide by the number of clicks),
        for labels other than 0/1, NaN scores, or arrays that are not 1-D and of equal length.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must be 1-D and of equal length, got shapes "
            f"{labels.shape} and {scores.shape}"
        )
    per_row = _per_impression(labels[None], scores[None], np.ones((1, labels.size), dtype=bool))
    return {name: float(values[0]) for name, values in per_row.items()}


def mind_metrics(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Averages MIND's metrics over a padded batch of impressions.

    Args:
      labels: ``[num_impressions, max_candidates]`` 0/1 click labels.
      scores: model scores of the same shape.
      mask: true where a column holds a real candidate; padding (anywhere in a row) is ignored,
        whatever its labels and scores.

    Returns:
      ``auc``, ``mrr``, ``ndcg@5`` and ``ndcg@10``, each the mean over impressions, plus
      ``num_impressions`` and ``num_impressions_without_auc``. The latter counts impressions in
      which every candidate was clicked: AUC is undefined there (the official scorer's
      ``roc_auc_score`` raises on them), so they are left out of the AUC mean but still count
      for MRR and nDCG. If no impression has an AUC, ``auc`` is NaN. MIND's own impressions
      always hold both a click and a non-click, so on MIND data nothing is left out.

    Raises:
      ValueError: when an impression has no clicked candidate (MRR and nDCG divide by the
        number of clicks; the official scorer would return NaN or fail), naming the rows; for
        labels other than 0/1 or NaN scores on real candidates; for mismatched shapes or an
        empty batch.
    """
    labels, scores, mask = np.asarray(labels), np.asarray(scores), np.asarray(mask, dtype=bool)
    if labels.ndim != 2 or labels.shape != scores.shape or labels.shape != mask.shape:
        raise ValueError(
            f"labels, scores and mask must be 2-D and of one shape, got "
            f"{labels.shape}, {scores.shape} and {mask.shape}"
        )
    if labels.shape[0] == 0:
        raise ValueError("no impressions to score")
    return average_rows([_per_impression(labels, scores, mask)])


def ranking_metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> dict[str, float]:
    """MIND's metrics for ragged impressions: each one's candidate scores and 0/1 labels."""
    return average_rows([impression_rows(scores, labels)])


def impression_rows(
    scores: Sequence[np.ndarray], labels: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Each metric of each of these ragged impressions (AUC NaN where undefined)."""
    s, mask = _pad_ragged(scores)
    y, _ = _pad_ragged(labels)
    if not len(s):
        raise ValueError("no impressions to score")
    return _per_impression(y.astype(np.int32), s, mask)


def average_rows(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, float]:
    """`mind_metrics` over impressions scored in parts (`impression_rows` of each part)."""
    parts = list(parts)
    per_row = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    has_auc = ~np.isnan(per_row["auc"])
    means = {name: float(values.mean()) for name, values in per_row.items()}
    means["auc"] = float(per_row["auc"][has_auc].mean()) if has_auc.any() else float("nan")
    return {
        **means,
        "num_impressions": len(has_auc),
        "num_impressions_without_auc": int((~has_auc).sum()),
    }


def _pad_ragged(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged 1-D rows -> ([n, max_len] zero-padded, mask)."""
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width), np.float64)
    mask = np.zeros((len(rows), width), bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


def popularity_scores(clicks: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts clicks per news id, for the popularity baseline.

    ``clicks`` yields ``(news_id, label)`` for every candidate of the training impressions.
    Every news id seen gets an entry, so shown-but-never-clicked news maps to 0.
    """
    counts: dict[str, int] = {}
    for news_id, label in clicks:
        counts[news_id] = counts.get(news_id, 0) + int(label)
    return counts


def score_by_popularity(
    candidate_ids_2d: Sequence[Sequence[str]], counts: dict[str, int]
) -> np.ndarray:
    """Scores each candidate by its training click count, for ``mind_metrics``.

    ``candidate_ids_2d`` holds one row of news ids per impression; rows may differ in length.
    Returns float64 scores of shape ``[num_impressions, longest_row]``: news never seen in
    training scores 0, and so does padding past a row's end, which the caller's mask hides.
    Many candidates tie (all unseen news, for one), and the metrics' tie rule (earlier candidate
    first) keeps the baseline's numbers reproducible.
    """
    rows = [[counts.get(news_id, 0) for news_id in row] for row in candidate_ids_2d]
    scores = np.zeros((len(rows), max((len(row) for row in rows), default=0)))
    for i, row in enumerate(rows):
        scores[i, : len(row)] = row
    return scores


def _per_impression(
    labels: np.ndarray, scores: np.ndarray, mask: np.ndarray
) -> dict[str, np.ndarray]:
    """Each metric per row (AUC NaN where undefined), after validating the real candidates."""
    _check_real_candidates(labels, scores, mask)
    # Zeroed padding labels add nothing to any sum below, wherever the padding sorts to.
    labels = np.where(mask, labels, 0).astype(np.float64)
    ranked_keys, ranked_labels = rank_rows(labels, scores, mask)
    num_pos = ranked_labels.sum(axis=1)
    _check_has_click(num_pos)
    ranks = np.arange(1, labels.shape[1] + 1, dtype=np.float64)
    return {
        "auc": _auc(ranked_keys, ranked_labels, num_pos, mask.sum(axis=1)),
        "mrr": (ranked_labels / ranks).sum(axis=1) / num_pos,
        **{f"ndcg@{k}": _ndcg(ranked_labels, num_pos, k) for k in NDCG_CUTOFFS},
    }


def _check_real_candidates(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> None:
    """Rejects what would make the metrics silently wrong rather than fail."""
    # Elementwise tests under the mask, not boolean indexing: no copies of the batch.
    if not ((labels == 0) | (labels == 1) | ~mask).all():
        raise ValueError("labels of real candidates must be 0 or 1")
    # NaN has no place in a ranking: it would sort after every number and tie with nothing.
    if np.issubdtype(scores.dtype, np.floating) and (np.isnan(scores) & mask).any():
        raise ValueError("scores of real candidates must not be NaN")


def _check_has_click(num_pos: np.ndarray) -> None:
    rows = np.flatnonzero(num_pos == 0)
    if rows.size:
        shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if rows.size > 10 else "")
        raise ValueError(
            f"{rows.size} impression(s) have no clicked candidate (rows {shown}): "
            "MRR and nDCG are undefined for them"
        )


def rank_rows(
    labels: np.ndarray, scores: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorts each row by descending score, ties in column order, padding last.

    Returns the sorted keys (negated scores, NaN for padding) and the labels in that order.
    Padding becomes NaN because every numpy sort puts NaN after all numbers, -inf negated
    included, so real candidates occupy ranks 1..n whatever their scores.
    """
    keys = np.where(mask, -scores.astype(np.float64), np.nan)
    order = np.argsort(keys, axis=1, kind="stable")
    return np.take_along_axis(keys, order, axis=1), np.take_along_axis(labels, order, axis=1)


def _ndcg(ranked_labels: np.ndarray, num_pos: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per row. With 0/1 labels the gain ``2**y - 1`` is ``y`` itself."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    top = ranked_labels[:, :k]
    dcg = top @ discounts[: top.shape[1]]
    # The ideal ranking puts every click first, so its DCG is the sum of the first
    # min(clicks, k) discounts.
    ideal = np.cumsum(discounts)[np.minimum(num_pos, k).astype(np.int64) - 1]
    return dcg / ideal


def row_auc(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of 0/1 `labels` against `scores` over its `mask`ed entries, a
    tied positive/negative pair counting one half; NaN for a row without both classes.

    The one AUC jaxrec computes: per impression here, over a whole set in `pair_metrics`.
    """
    labels = np.where(mask, labels, 0).astype(np.float64)
    ranked_keys, ranked_labels = rank_rows(labels, scores, mask)
    return _auc(ranked_keys, ranked_labels, ranked_labels.sum(axis=1), mask.sum(axis=1))


def _auc(
    ranked_keys: np.ndarray, ranked_labels: np.ndarray, num_pos: np.ndarray, num_real: np.ndarray
) -> np.ndarray:
    """ROC AUC per row from the Mann-Whitney U statistic; NaN for rows without both classes."""
    avg_rank = _average_ranks(ranked_keys)
    # Ascending rank = n + 1 - descending rank, summed over the clicked candidates.
    rank_sum = num_pos * (num_real + 1) - (ranked_labels * avg_rank).sum(axis=1)
    num_neg = num_real - num_pos
    pairs = num_pos * num_neg
    u_stat = rank_sum - num_pos * (num_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, u_stat / pairs, np.nan)


def tie_runs(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of row-sorted keys, the first and last column of its run of equal keys.

    NaN padding compares unequal to everything, so it never joins a run of real entries.
    """
    width = sorted_keys.shape[1]
    positions = np.arange(width)
    starts = np.ones(sorted_keys.shape, dtype=bool)
    starts[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    ends = np.ones(sorted_keys.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, positions, width - 1)[:, ::-1], axis=1)[:, ::-1]
    return first, last


def _average_ranks(sorted_keys: np.ndarray) -> np.ndarray:
    """1-based positions in each sorted row, averaged over runs of equal keys: a run spanning
    positions first..last gets (first + last) / 2 + 1, which is what makes a tied
    positive/negative pair count one half in the AUC."""
    first, last = tie_runs(sorted_keys)
    return (first + last) / 2 + 1
