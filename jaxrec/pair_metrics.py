"""Metrics for the rating, click and multi-label heads, vectorised in numpy.

Each metric pools every example of the evaluation set (unlike ``jaxrec.metrics``, which scores
MIND impressions one by one and averages). Everything is computed in float64 whatever the
input dtype, and no function loops over examples or labels in Python.

- rating (regression): RMSE and MAE.
- click (binary): ROC AUC, a tied positive/negative pair counting one half, and log loss.
- multilabel: micro and macro F1 at a probability threshold, and mean average precision.

The definitions match ``sklearn.metrics`` where sklearn has the same metric; the docstrings
name the few places where they differ.
"""

from __future__ import annotations

import numpy as np

from jaxrec.metrics import rank_rows, row_auc, tie_runs

PAIR_METRICS: dict[str, tuple[str, ...]] = {
    "rating": ("rmse", "mae"),
    "click": ("auc", "log_loss"),
    "multilabel": ("micro_f1", "macro_f1", "map"),
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "rmse": False,
    "mae": False,
    "auc": True,
    "log_loss": False,
    "micro_f1": True,
    "macro_f1": True,
    "map": True,
}


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    """Root mean squared error over all elements."""
    y, pred = _same_shape(y, pred, "y", "pred")
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute error over all elements."""
    y, pred = _same_shape(y, pred, "y", "pred")
    return float(np.mean(np.abs(y - pred)))


def binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Global ROC AUC of 0/1 labels ``y`` against scores of any shape (flattened).

    The probability that a random positive scores above a random negative, a tie counting one
    half (``sklearn.metrics.roc_auc_score``): ``jaxrec.metrics.row_auc`` over one row.

    Raises:
      ValueError: when ``y`` holds only one class, labels are not 0/1, scores are NaN, or the
        shapes differ.
    """
    y, score = _same_shape(y, score, "y", "score")
    y, score = y.reshape(1, -1), score.reshape(1, -1)
    _check_binary(y, "y")
    _check_not_nan(score, "score")
    if y.all() or not y.any():
        raise ValueError("AUC needs both classes in y, but only one is present")
    return float(row_auc(y, score, np.ones(y.shape, bool))[0])


def log_loss(y: np.ndarray, prob: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy, with ``prob`` clipped to ``[eps, 1 - eps]``.

    The clip keeps a confident mistake at a finite loss (about 16 nats for 1e-7) instead of
    infinity, so one bad example cannot hide every other. Labels may be soft, within [0, 1].
    """
    y, prob = _same_shape(y, prob, "y", "prob")
    if not ((y >= 0) & (y <= 1)).all():
        raise ValueError("y must lie in [0, 1]")
    _check_not_nan(prob, "prob")
    p = np.clip(prob, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def multilabel_f1(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Micro and macro F1 of ``prob >= threshold`` against 0/1 labels, both ``[n, num_labels]``.

    micro_f1 pools every (example, label) decision; macro_f1 is the unweighted mean of the
    per-label F1. F1 is ``2 tp / (2 tp + fp + fn)``; where that is 0/0 (a label with no
    positive and no predicted positive, or micro F1 of an all-negative set) it counts as 0,
    sklearn's ``zero_division=0`` convention.
    """
    y, prob = _multilabel(y, prob)
    predicted = prob >= threshold
    positive = y == 1
    tp = (predicted & positive).sum(axis=0).astype(np.float64)
    fp = (predicted & ~positive).sum(axis=0).astype(np.float64)
    fn = (~predicted & positive).sum(axis=0).astype(np.float64)
    return {
        "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
        "macro_f1": float(np.mean(_f1(tp, fp, fn))),
    }


def mean_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Mean over labels of average precision, for 0/1 labels and scores ``[n, num_labels]``.

    Per label, AP is ``sum_t (R_t - R_{t-1}) * P_t`` over the distinct score thresholds t in
    descending order (``sklearn.metrics.average_precision_score``): each positive contributes
    the precision at the end of its run of tied scores, divided by the number of positives.
    The mean covers only labels with at least one positive (AP is undefined for the others;
    sklearn's macro average would count them as 0).

    Raises:
      ValueError: when no label has a positive, labels are not 0/1, scores are NaN, or the
        arrays are not 2-D and of one shape.
    """
    y, score = _multilabel(y, score)
    _check_not_nan(score, "score")
    num_pos = y.sum(axis=0)
    if not num_pos.any():
        raise ValueError("mean average precision needs a label with at least one positive")
    # One row per label, its examples sorted by descending score.
    keys, labels = rank_rows(y.T, score.T, np.ones(y.T.shape, bool))
    _, last = tie_runs(keys)
    tp_through = np.cumsum(labels, axis=1)
    precision = tp_through / np.arange(1, keys.shape[1] + 1, dtype=np.float64)
    at_run_end = np.take_along_axis(precision, last, axis=1)
    has_pos = num_pos > 0
    ap = (labels * at_run_end).sum(axis=1)[has_pos] / num_pos[has_pos]
    return float(ap.mean())


def rating_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"rmse": rmse(y, pred), "mae": mae(y, pred)}


def click_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    return {"auc": binary_auc(y, prob), "log_loss": log_loss(y, prob)}


def multilabel_metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    return {**multilabel_f1(y, prob), "map": mean_average_precision(y, prob)}


def _same_shape(a, b, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{a_name} and {b_name} differ in shape: {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{a_name} and {b_name} are empty")
    return a, b


def _multilabel(y, prob) -> tuple[np.ndarray, np.ndarray]:
    y, prob = _same_shape(y, prob, "y", "prob")
    if y.ndim != 2:
        raise ValueError(f"multi-label arrays must be [examples, labels], got shape {y.shape}")
    _check_binary(y, "y")
    return y, prob


def _check_binary(y: np.ndarray, name: str) -> None:
    if not ((y == 0) | (y == 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")


def _check_not_nan(x: np.ndarray, name: str) -> None:
    # NaN would sort after every number and tie with nothing, giving a plausible wrong value.
    if np.isnan(x).any():
        raise ValueError(f"{name} must not be NaN")


def _f1(tp, fp, fn):
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)
