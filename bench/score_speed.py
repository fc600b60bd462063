"""Scoring time of one submission with the clinical metrics and the figures' data (issue 14): all metrics and
the figures of both partitions of a 10,000-image test split, against baselines measured in the same run: the
former scorer (ROC AUC, accuracy and balanced accuracy at >= 0.5) and scikit-learn's ``roc_auc_score`` alone.
Prints the median seconds of each and the ratios, and the size of the stored metrics JSON. Target: well under
a second.

    .venv/bin/python bench/score_speed.py [--images 10000] [--repeat 20] [--malignant 0.1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.data import HiddenLabels  # noqa: E402
from grader.scoring import score_predictions  # noqa: E402


def make_split(images: int, malignant: float, seed: int = 14) -> tuple[dict[str, float], HiddenLabels]:
    """Hidden labels (half public, half private) and distinct, informative probabilities for every image."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(images) < malignant).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=images) + 1.5 * truth - 1.5)))
    ids = [f"img-{index:06d}" for index in range(images)]
    labels = HiddenLabels(
        labels=dict(zip(ids, truth.tolist(), strict=True)),
        partition={image_id: "public" if index % 2 else "private" for index, image_id in enumerate(ids)},
    )
    return dict(zip(ids, scores.tolist(), strict=True)), labels


def former_scorer(predictions: dict[str, float], labels: HiddenLabels) -> dict:
    """The scorer before issue 14 (grader/scoring.py at commit c4e8501), kept here as the baseline."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    scored = {}
    for partition in ("public", "private"):
        ids = labels.ids(partition)
        truth = [labels.labels[image_id] for image_id in ids]
        scores = [predictions[image_id] for image_id in ids]
        decided = [int(score >= 0.5) for score in scores]
        scored[partition] = {
            "roc_auc": float(roc_auc_score(truth, scores)),
            "accuracy": float(accuracy_score(truth, decided)),
            "balanced_accuracy": float(balanced_accuracy_score(truth, decided)),
            "count": len(ids),
            "malignant": sum(truth),
        }
    return scored


def auc_only(predictions: dict[str, float], labels: HiddenLabels) -> dict:
    from sklearn.metrics import roc_auc_score

    return {
        partition: roc_auc_score(
            [labels.labels[image_id] for image_id in labels.ids(partition)],
            [predictions[image_id] for image_id in labels.ids(partition)],
        )
        for partition in ("public", "private")
    }


def median_seconds(function, predictions, labels, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function(predictions, labels)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--malignant", type=float, default=0.1, help="share of malignant test images")
    args = parser.parse_args()
    predictions, labels = make_split(args.images, args.malignant)
    started = time.perf_counter()
    scored = score_predictions(predictions, labels)  # the first call also imports scikit-learn
    cold = time.perf_counter() - started
    new = median_seconds(score_predictions, predictions, labels, args.repeat)
    former = median_seconds(former_scorer, predictions, labels, args.repeat)
    alone = median_seconds(auc_only, predictions, labels, args.repeat)
    roc_points = [len(scored["figures"][part]["roc"]) for part in ("public", "private")]
    print(f"{args.images} test images ({args.malignant:.0%} malignant), median of {args.repeat} runs")
    print(f"all metrics + figures, both partitions: {new:.4f} s (first call, importing scikit-learn: {cold:.3f} s)")
    print(f"former scorer (AUC, accuracy, balanced accuracy): {former:.4f} s   ratio new/former {new / former:.2f}")
    print(f"roc_auc_score alone, both partitions: {alone:.4f} s   ratio new/roc_auc_score {new / alone:.2f}")
    print(f"stored metrics JSON: {len(json.dumps(scored))} bytes; ROC points kept (public, private): {roc_points}")
    print(f"public: {json.dumps(scored['public'])}")


if __name__ == "__main__":
    main()
