"""Clinical metrics of one set of predictions, and the data of its pictures (ROC curve, operating point, confusion).

A probability above ``THRESHOLD`` (0.5) counts as malignant, as the official ISIC scorer (``isic-challenge-scoring``)
decides. ``pauc_80`` is the ISIC 2024 challenge's partial AUC above 80 % true-positive rate (range 0 to 0.2): the
Kaggle metric flips labels and scores, so that "TPR of at least 0.8" becomes "FPR of at most 0.2", and integrates
the flipped ROC curve up to there. A metric that is undefined (one class only, or no image) is None.

This module imports scikit-learn only when it scores, so the catalog (which reads ``METRICS``) stays light.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.5
MIN_TPR = 0.8  # pauc_80: the partial AUC above this sensitivity
MAX_ROC_POINTS = 200  # the stored ROC curve is thinned to at most this many points (storable_json keeps 200 a list)
ROC_DECIMALS = 6


@dataclass(frozen=True)
class Metric:
    """A leaderboard metric: its label for pages, its range, and that a higher value is better."""

    key: str
    label: str
    short: str
    low: float = 0.0
    high: float = 1.0


# the keys of metrics.public / metrics.private, in the order pages list them (plus "count", which is no metric)
METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("roc_auc", "ROC AUC", "ROC AUC"),
        Metric("pauc_80", "partial AUC above 80 % sensitivity", "pAUC 80 %", high=1 - MIN_TPR),
        Metric("average_precision", "average precision", "AP"),
        Metric("sensitivity", "sensitivity (melanomas caught) at 0.5", "sensitivity"),
        Metric("specificity", "specificity (benign lesions spared) at 0.5", "specificity"),
        Metric("balanced_accuracy", "balanced accuracy at 0.5", "balanced accuracy"),
        Metric("accuracy", "accuracy at 0.5", "accuracy"),
    )
}
DEFAULT_METRIC = "roc_auc"
METRIC_KEYS = (*METRICS, "count")


def evaluate(truth: np.ndarray, scores: np.ndarray) -> tuple[dict, dict]:
    """The metrics (keys ``METRIC_KEYS``) and the figures' data of labels 0/1 and probabilities of malignancy."""
    truth = np.asarray(truth, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    confusion = confusion_at_threshold(truth, scores)
    tp, fn, fp, tn = (confusion[key] for key in ("tp", "fn", "fp", "tn"))
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    both = tp + fn > 0 and tn + fp > 0
    metrics = {
        "roc_auc": None,
        "pauc_80": None,
        "average_precision": None,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (sensitivity + specificity) / 2 if both else None,
        "accuracy": _ratio(tp + tn, len(truth)),
        "count": len(truth),
    }
    figures: dict = {"roc": None, "operating_point": None, "confusion": confusion}
    if both:
        from sklearn.metrics import auc, average_precision_score, roc_curve

        fpr, tpr, _thresholds = roc_curve(truth, scores)
        metrics["roc_auc"] = float(auc(fpr, tpr))
        metrics["pauc_80"] = partial_auc_above_tpr(truth, scores, MIN_TPR)
        metrics["average_precision"] = float(average_precision_score(truth, scores))
        figures["roc"] = thin_curve(np.column_stack([fpr, tpr]), MAX_ROC_POINTS)
        figures["operating_point"] = [fp / (fp + tn), sensitivity]
    return metrics, figures


def confusion_at_threshold(truth: np.ndarray, scores: np.ndarray) -> dict[str, int]:
    """Melanomas caught (tp) and missed (fn), benign lesions sent to biopsy (fp) and spared (tn), at > 0.5."""
    positive, decided = truth == 1, scores > THRESHOLD
    return {
        "tp": int(np.count_nonzero(positive & decided)),
        "fn": int(np.count_nonzero(positive & ~decided)),
        "fp": int(np.count_nonzero(~positive & decided)),
        "tn": int(np.count_nonzero(~positive & ~decided)),
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def partial_auc_above_tpr(truth: np.ndarray, scores: np.ndarray, min_tpr: float = MIN_TPR) -> float:
    """The ISIC 2024 (Kaggle) partial AUC: the area of the ROC curve above ``min_tpr``, in [0, 1 - min_tpr].

    Labels and scores are flipped, the flipped ROC curve is cut at FPR ``1 - min_tpr`` (with a point interpolated
    there) and integrated with the trapezoidal rule, as the challenge's metric does.
    """
    from sklearn.metrics import auc, roc_curve

    max_fpr = 1.0 - min_tpr
    fpr, tpr, _thresholds = roc_curve(1 - np.asarray(truth), -np.asarray(scores, dtype=np.float64))
    stop = int(np.searchsorted(fpr, max_fpr, "right"))
    if stop >= len(fpr):  # cannot happen (the curve ends at FPR 1 > max_fpr); kept for safety
        return float(auc(fpr, tpr))
    inside_tpr = np.append(tpr[:stop], np.interp(max_fpr, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1]))
    return float(auc(np.append(fpr[:stop], max_fpr), inside_tpr))


def thin_curve(points: np.ndarray, limit: int = MAX_ROC_POINTS) -> list[list[float]]:
    """At most ``limit`` points of a polyline, first and last kept, chosen to keep its shape.

    Greedy Douglas-Peucker: starting from the two ends, the point farthest from the thinned line is added
    until ``limit`` points are kept or every left-out point lies on the thinned line.
    """
    points = np.asarray(points, dtype=np.float64)
    keep = set(range(len(points))) if len(points) <= limit else _farthest_first(points, limit)
    return [[round(float(x), ROC_DECIMALS), round(float(y), ROC_DECIMALS)] for x, y in points[sorted(keep)]]


def _farthest_first(points: np.ndarray, limit: int) -> set[int]:
    keep = {0, len(points) - 1}
    heap: list[tuple[float, int, int, int]] = []
    _push_segment(heap, points, 0, len(points) - 1)
    while heap and len(keep) < limit:
        _distance, start, farthest, end = heapq.heappop(heap)
        keep.add(farthest)
        _push_segment(heap, points, start, farthest)
        _push_segment(heap, points, farthest, end)
    return keep


def _push_segment(heap: list, points: np.ndarray, start: int, end: int) -> None:
    """Queue the segment's farthest inner point by its distance from the chord (none on the chord)."""
    if end - start < 2:
        return
    chord = points[end] - points[start]
    offsets = points[start + 1 : end] - points[start]
    length = float(np.hypot(*chord))
    if length > 0:
        distances = np.abs(chord[0] * offsets[:, 1] - chord[1] * offsets[:, 0]) / length
    else:
        distances = np.hypot(offsets[:, 0], offsets[:, 1])
    inner = int(np.argmax(distances))
    if distances[inner] > 1e-12:
        heapq.heappush(heap, (-float(distances[inner]), start, start + 1 + inner, end))
