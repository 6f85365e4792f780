"""jaxrec.pair_metrics against plain brute-force definitions and sklearn, on data full of ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxrec.pair_metrics import (
    HIGHER_IS_BETTER,
    PAIR_METRICS,
    binary_auc,
    click_metrics,
    log_loss,
    mae,
    mean_average_precision,
    multilabel_f1,
    multilabel_metrics,
    rating_metrics,
    rmse,
)

SEEDS = range(6)


def reference_auc(y: list[int], score: list[float]) -> float:
    """Every positive/negative pair: 1 if the positive scores higher, 1/2 on a tie."""
    pos = [s for label, s in zip(y, score, strict=True) if label == 1]
    neg = [s for label, s in zip(y, score, strict=True) if label == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def reference_ap(y: list[int], score: list[float]) -> float:
    """sum over distinct thresholds t, highest first, of (recall_t - recall_prev) * precision_t."""
    num_pos = sum(y)
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(score), reverse=True):
        selected = [label for label, s in zip(y, score, strict=True) if s >= t]
        recall = sum(selected) / num_pos
        ap += (recall - prev_recall) * sum(selected) / len(selected)
        prev_recall = recall
    return ap


def reference_f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def tied_binary(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and small integer scores, so most scores tie with many others."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.1, 0.7)).astype(np.int64)
    y[:2] = [1, 0]
    return y, rng.integers(0, 6, size=n).astype(np.float32)


def tied_multilabel(seed: int, n: int = 120, num_labels: int = 7):
    """Labels with one all-zero column, and probabilities on a coarse grid (ties, and 0.5)."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, num_labels)) < rng.uniform(0.05, 0.5, num_labels)).astype(np.int64)
    y[:, 3] = 0
    prob = rng.integers(0, 5, size=(n, num_labels)) / 4
    return y, prob


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 6, size=200).astype(np.float32)
    pred = y + rng.normal(0, 1, size=200).astype(np.float32)
    errors = [float(a) - float(b) for a, b in zip(y, pred, strict=True)]
    assert rmse(y, pred) == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)))
    assert mae(y, pred) == pytest.approx(sum(abs(e) for e in errors) / len(errors))
    assert rmse(y, pred) == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)))
    assert rating_metrics(y, pred) == {"rmse": rmse(y, pred), "mae": mae(y, pred)}


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_matches_pair_count_and_sklearn(seed):
    y, score = tied_binary(seed)
    got = binary_auc(y, score)
    assert got == pytest.approx(reference_auc(y.tolist(), score.tolist()), abs=1e-12)
    assert got == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_auc_pools_every_element_of_a_2d_batch():
    y, score = tied_binary(0, n=240)
    assert binary_auc(y.reshape(12, 20), score.reshape(12, 20)) == binary_auc(y, score)


def test_auc_hand_cases():
    assert binary_auc([0, 1], [0.2, 0.9]) == 1.0
    assert binary_auc([1, 0], [0.2, 0.9]) == 0.0
    assert binary_auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert binary_auc([0, 1, 0], [-np.inf, np.inf, 0.0]) == 1.0


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0]])
def test_auc_of_one_class_is_an_error(y):
    with pytest.raises(ValueError, match="both classes"):
        binary_auc(y, np.arange(len(y), dtype=float))


@pytest.mark.parametrize(
    ("y", "score", "message"),
    [([0, 2], [0.1, 0.2], "0 and 1"), ([0, 1], [np.nan, 0.2], "NaN"), ([0, 1], [0.1], "shape")],
)
def test_auc_rejects_bad_input(y, score, message):
    with pytest.raises(ValueError, match=message):
        binary_auc(y, score)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_matches_definition_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=150)
    prob = rng.uniform(0.01, 0.99, size=150).astype(np.float32)
    ref = -sum(
        math.log(float(p)) if label else math.log(1 - float(p))
        for label, p in zip(y, prob, strict=True)
    ) / len(y)
    assert log_loss(y, prob) == pytest.approx(ref, rel=1e-12)
    assert log_loss(y, prob) == pytest.approx(skm.log_loss(y, prob.astype(np.float64)), rel=1e-9)
    assert click_metrics(y, prob) == {"auc": binary_auc(y, prob), "log_loss": log_loss(y, prob)}


def test_log_loss_clips_certain_mistakes():
    assert log_loss([1, 0], [0.0, 1.0], eps=1e-7) == pytest.approx(-math.log(1e-7))
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(-math.log(1 - 1e-7))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_loss([2, 0], [0.5, 0.5])


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_f1_matches_counts_and_sklearn(seed):
    y, prob = tied_multilabel(seed)
    got = multilabel_f1(y, prob)
    predicted = prob >= 0.5
    counts = [
        (
            int((predicted[:, j] & (y[:, j] == 1)).sum()),
            int((predicted[:, j] & (y[:, j] == 0)).sum()),
            int((~predicted[:, j] & (y[:, j] == 1)).sum()),
        )
        for j in range(y.shape[1])
    ]
    macro = sum(reference_f1(*c) for c in counts) / len(counts)
    micro = reference_f1(*(sum(c[i] for c in counts) for i in range(3)))
    assert got["macro_f1"] == pytest.approx(macro, abs=1e-12)
    assert got["micro_f1"] == pytest.approx(micro, abs=1e-12)
    sk = {
        "macro_f1": skm.f1_score(y, predicted.astype(int), average="macro", zero_division=0),
        "micro_f1": skm.f1_score(y, predicted.astype(int), average="micro", zero_division=0),
    }
    assert got == pytest.approx(sk, abs=1e-12)


def test_f1_of_a_label_never_seen_nor_predicted_is_zero():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    prob = np.array([[0.9, 0.1], [0.2, 0.0], [0.7, 0.3]])
    assert multilabel_f1(y, prob) == {"micro_f1": 1.0, "macro_f1": 0.5}
    assert multilabel_f1(np.zeros((2, 2)), np.zeros((2, 2))) == {"micro_f1": 0.0, "macro_f1": 0.0}
    # The threshold is inclusive.
    assert multilabel_f1([[1]], [[0.5]])["micro_f1"] == 1.0
    assert multilabel_f1([[1]], [[0.5]], threshold=0.6)["micro_f1"] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_map_matches_threshold_loop_and_sklearn(seed):
    y, prob = tied_multilabel(seed)
    with_pos = [j for j in range(y.shape[1]) if y[:, j].any()]
    assert 3 not in with_pos  # The all-zero column is skipped, not scored as 0.
    refs = [reference_ap(y[:, j].tolist(), prob[:, j].tolist()) for j in with_pos]
    got = mean_average_precision(y, prob)
    assert got == pytest.approx(sum(refs) / len(refs), abs=1e-12)
    sk = [skm.average_precision_score(y[:, j], prob[:, j]) for j in with_pos]
    assert got == pytest.approx(np.mean(sk), abs=1e-12)


def test_map_hand_cases():
    # Positives at ranks 1 and 3: (1/1 + 2/3) / 2.
    assert mean_average_precision([[1], [0], [1]], [[0.9], [0.8], [0.7]]) == pytest.approx(5 / 6)
    # One tie run holding everything: precision of the whole list.
    assert mean_average_precision([[1], [0], [0], [0]], [[1.0]] * 4) == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="at least one positive"):
        mean_average_precision(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"\[examples, labels\]"):
        mean_average_precision([1, 0], [0.3, 0.2])


def test_multilabel_metrics_and_tables():
    y, prob = tied_multilabel(0)
    got = multilabel_metrics(y, prob)
    assert got == {**multilabel_f1(y, prob), "map": mean_average_precision(y, prob)}
    assert set(got) == set(PAIR_METRICS["multilabel"])
    names = [name for group in PAIR_METRICS.values() for name in group]
    assert sorted(names) == sorted(HIGHER_IS_BETTER)
