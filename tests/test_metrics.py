"""jaxrec.metrics against a brute-force reading of MIND's scorer, plus hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from jaxrec.metrics import (
    impression_metrics,
    mind_metrics,
    popularity_scores,
    score_by_popularity,
)

METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10")


def reference_metrics(labels: list[int], scores: list[float]) -> dict[str, float]:
    """The official definitions, one candidate at a time, over a stable descending sort."""
    n = len(labels)
    order = sorted(range(n), key=lambda i: -scores[i])  # Python's sort is stable.
    ideal = sorted(range(n), key=lambda i: -labels[i])

    def dcg(ranking: list[int], k: int) -> float:
        return sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(ranking[:k]))

    return {
        "auc": float(roc_auc_score(labels, scores)),
        "mrr": sum(labels[i] / (r + 1) for r, i in enumerate(order)) / sum(labels),
        "ndcg@5": dcg(order, 5) / dcg(ideal, 5),
        "ndcg@10": dcg(order, 10) / dcg(ideal, 10),
    }


def random_impressions(
    seed: int, num: int = 200, max_len: int = 60
) -> tuple[list[list[int]], list[list[float]]]:
    """Rows of 2..max_len candidates with a click and a non-click; scores tie often."""
    rng = np.random.default_rng(seed)
    all_labels, all_scores = [], []
    for _ in range(num):
        n = int(rng.integers(2, max_len + 1))
        labels = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
        labels[rng.choice(n, size=2, replace=False)] = [1, 0]
        all_labels.append(labels.tolist())
        all_scores.append((rng.integers(0, 5, size=n) * 0.25).tolist())
    return all_labels, all_scores


def pad(rows: list[list[float]], width: int, fill: float) -> np.ndarray:
    return np.array([row + [fill] * (width - len(row)) for row in rows], dtype=np.float64)


def batch(labels: list[list[int]], scores: list[list[float]], padding: float = 0.0):
    width = max(len(row) for row in labels)
    mask = np.array([[j < len(row) for j in range(width)] for row in labels])
    return pad(labels, width, padding), pad(scores, width, padding), mask


@pytest.mark.parametrize("seed", range(5))
def test_batch_matches_reference_mean(seed):
    labels, scores = random_impressions(seed)
    refs = [reference_metrics(y, s) for y, s in zip(labels, scores, strict=True)]
    got = mind_metrics(*batch(labels, scores))
    for name in METRICS:
        assert got[name] == pytest.approx(np.mean([r[name] for r in refs]), abs=1e-9), name
    assert got["num_impressions"] == len(labels)
    assert got["num_impressions_without_auc"] == 0


@pytest.mark.parametrize("seed", range(3))
def test_single_impression_matches_reference(seed):
    labels, scores = random_impressions(seed, num=50)
    for y, s in zip(labels, scores, strict=True):
        got = impression_metrics(np.array(y), np.array(s))
        assert set(got) == set(METRICS)
        for name, value in reference_metrics(y, s).items():
            assert got[name] == pytest.approx(value, abs=1e-12), name


def test_padding_values_are_ignored():
    labels, scores = random_impressions(7, num=30)
    clean = mind_metrics(*batch(labels, scores))
    y, s, mask = batch(labels, scores, padding=1.0)
    s[~mask] = np.nan  # Even NaN is harmless where the mask says padding.
    assert mind_metrics(y, s, mask) == pytest.approx(clean, abs=1e-12)


def test_padding_inside_a_row_is_skipped():
    labels, scores = [1, 0, 0, 1, 0], [0.5, 0.5, 0.9, 0.1, 0.5]
    holes = np.array([True, False, True, True, False, True, True])
    y = np.zeros(7)
    s = np.full(7, 9.0)
    y[holes], s[holes] = labels, scores
    got = mind_metrics(y[None], s[None], holes[None])
    ref = reference_metrics(labels, scores)
    for name in METRICS:
        assert got[name] == pytest.approx(ref[name], abs=1e-12)


def test_perfect_ranking_scores_one():
    got = impression_metrics(np.array([0, 1, 0, 0]), np.array([0.3, 0.9, 0.2, 0.1]))
    assert got == pytest.approx({name: 1.0 for name in METRICS})


def test_mrr_of_several_clicks_averages_their_reciprocal_ranks():
    # MIND's MRR is sum(y / rank) / sum(y): a perfect ranking of two clicks scores 3/4, not 1.
    got = impression_metrics(np.array([1, 1, 0, 0, 0]), np.array([0.9, 0.8, 0.3, 0.2, 0.1]))
    assert got["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert got["auc"] == got["ndcg@5"] == got["ndcg@10"] == pytest.approx(1.0)


def test_reversed_ranking_of_one_click_among_four():
    got = impression_metrics(np.array([0, 0, 0, 1]), np.array([4.0, 3.0, 2.0, 1.0]))
    assert got["auc"] == 0.0
    assert got["mrr"] == pytest.approx(1 / 4)
    assert got["ndcg@5"] == pytest.approx(1 / math.log2(5))
    assert got["ndcg@10"] == got["ndcg@5"]


def test_ties_rank_the_earlier_candidate_first():
    clicked_first = impression_metrics(np.array([1, 0]), np.array([0.5, 0.5]))
    clicked_second = impression_metrics(np.array([0, 1]), np.array([0.5, 0.5]))
    assert clicked_first["mrr"] == 1.0
    assert clicked_second["mrr"] == 0.5
    assert clicked_second["ndcg@5"] == pytest.approx(1 / math.log2(3))
    # AUC counts the tied pair as one half whichever comes first.
    assert clicked_first["auc"] == clicked_second["auc"] == 0.5


def test_infinite_scores_rank_as_numbers():
    got = impression_metrics(np.array([0, 1, 0]), np.array([-np.inf, np.inf, 0.0]))
    assert got == pytest.approx({name: 1.0 for name in METRICS})
    y = np.array([[1, 0, 0]])
    s = np.array([[-np.inf, -np.inf, 7.0]])
    got = mind_metrics(y, s, np.array([[True, True, False]]))
    assert got["mrr"] == 1.0 and got["auc"] == 0.5


def test_all_clicked_rows_are_left_out_of_auc_only():
    y = np.array([[1, 0, 0], [1, 1, 1]])
    s = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    got = mind_metrics(y, s, np.ones_like(y, dtype=bool))
    assert got["auc"] == 0.0  # The first row's AUC alone.
    assert got["mrr"] == pytest.approx((1 / 3 + (1 + 1 / 2 + 1 / 3) / 3) / 2)
    assert got["num_impressions"] == 2
    assert got["num_impressions_without_auc"] == 1
    assert math.isnan(impression_metrics(np.array([1, 1]), np.array([0.0, 1.0]))["auc"])


def test_auc_is_nan_when_no_row_has_one():
    got = mind_metrics(np.ones((2, 3)), np.zeros((2, 3)), np.ones((2, 3), dtype=bool))
    assert math.isnan(got["auc"])
    assert got["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert got["ndcg@5"] == pytest.approx(1.0)
    assert got["num_impressions_without_auc"] == 2


def test_rows_without_a_click_are_named():
    # Row 3's click sits in padding, so it does not count.
    y = np.array([[1, 0], [0, 0], [1, 1], [1, 0]])
    mask = np.array([[True, True], [True, True], [True, True], [False, True]])
    with pytest.raises(ValueError, match=r"rows 1, 3\)"):
        mind_metrics(y, np.zeros((4, 2)), mask)
    with pytest.raises(ValueError, match="no clicked candidate"):
        impression_metrics(np.array([0, 0, 0]), np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        (np.array([[1, 2]]), np.array([[0.0, 1.0]]), "0 or 1"),
        (np.array([[1, 0]]), np.array([[np.nan, 1.0]]), "NaN"),
        (np.array([[1, 0]]), np.array([[0.0, 1.0, 2.0]]), "one shape"),
        (np.array([1, 0]), np.array([0.0, 1.0]), "one shape"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "no impressions"),
    ],
)
def test_bad_batches_are_rejected(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        mind_metrics(labels, scores, np.ones(labels.shape, dtype=bool))


def test_bad_single_impression_is_rejected():
    with pytest.raises(ValueError, match="equal length"):
        impression_metrics(np.array([1, 0]), np.array([0.5]))


def test_popularity_counts_clicks_and_keeps_unclicked_news():
    counts = popularity_scores([("N1", 1), ("N2", 0), ("N1", 1), ("N3", 1), ("N2", 0)])
    assert counts == {"N1": 2, "N2": 0, "N3": 1}


def test_score_by_popularity_pads_and_defaults_to_zero():
    counts = {"N1": 2, "N2": 0, "N3": 1}
    scores = score_by_popularity([["N3", "N1"], ["N9", "N2", "N1"]], counts)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, [[1.0, 2.0, 0.0], [0.0, 0.0, 2.0]])
    assert score_by_popularity([], counts).shape == (0, 0)


def test_popularity_baseline_end_to_end():
    counts = popularity_scores([("N1", 1), ("N2", 1), ("N1", 1), ("N3", 0)])
    ids = [["N3", "N1"], ["N2", "N3", "N4"]]
    scores = score_by_popularity(ids, counts)
    labels = np.array([[0, 1, 0], [0, 0, 1]])
    mask = np.array([[True, True, False], [True, True, True]])
    got = mind_metrics(labels, scores, mask)
    # Row 0 ranks its click first; row 1 ties N3 and N4 at 0 and N3, listed first, wins.
    assert got["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert got["auc"] == pytest.approx((1 + 0.25) / 2)
