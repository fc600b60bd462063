"""Run a workshop submission on your own computer, with the same harness as the server (``run_local.py`` of the kit).

Usage, inside the unzipped starter kit::

    python run_local.py                  # trains starter.py
    python run_local.py my_model.py      # trains your file
    python run_local.py --look           # writes examples.png: a few benign and malignant images
    python run_local.py --seed 1234      # the seed of a run on the server (its run record): the same start

The kit's sample has training and validation images with labels. This runner keeps the sampled
validation images apart in two halves: one is ``data.val``, the other plays the held-out test split,
whose labels the harness never sees; the runner scores the predictions itself (ROC AUC, the partial AUC
above 80 % sensitivity, sensitivity and specificity at 0.5), as the server does. Standard library and NumPy
only (TensorFlow for the training itself, in the harness).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

KIT = os.path.dirname(os.path.abspath(__file__))


def read_split(name: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    images = np.load(os.path.join(KIT, "data", f"{name}.npy"), allow_pickle=False)
    with open(os.path.join(KIT, "data", f"{name}.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return images, [row["image_id"] for row in rows], np.array([int(row["label"]) for row in rows])


def halves(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of two halves with both classes in each (alternating within each class)."""
    first, second = [], []
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        first += list(members[0::2])
        second += list(members[1::2])
    return np.sort(np.array(first, dtype=int)), np.sort(np.array(second, dtype=int))


def write_split(folder: str, name: str, images: np.ndarray, ids: list[str], labels: np.ndarray | None) -> None:
    np.save(os.path.join(folder, f"{name}.npy"), np.ascontiguousarray(images), allow_pickle=False)
    with open(os.path.join(folder, f"{name}.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id"] if labels is None else ["image_id", "label"])
        for index, image_id in enumerate(ids):
            writer.writerow([image_id] if labels is None else [image_id, int(labels[index])])


def prepare_data(folder: str) -> dict[str, int]:
    """train, val and a labelless test split in ``folder``; returns the hidden test labels by id."""
    train_images, train_ids, train_labels = read_split("train")
    write_split(folder, "train", train_images, train_ids, train_labels)
    images, ids, labels = read_split("val")
    val_rows, test_rows = halves(labels)
    write_split(folder, "val", images[val_rows], [ids[row] for row in val_rows], labels[val_rows])
    write_split(folder, "test", images[test_rows], [ids[row] for row in test_rows], None)
    return {ids[row]: int(labels[row]) for row in test_rows}


def roc_auc(labels: list[int], scores: list[float]) -> float | None:
    """Probability that a random malignant image scores above a random benign one (ties count half)."""
    order = sorted(range(len(scores)), key=lambda index: scores[index])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label == 1)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve's corners (false- and true-positive rates), from (0, 0) to (1, 1); ties form one step."""
    order = np.argsort(-scores, kind="mergesort")
    ordered, hits = scores[order], labels[order]
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    true_positives = np.cumsum(hits)[ends]
    false_positives = ends + 1 - true_positives
    return np.r_[0, false_positives] / false_positives[-1], np.r_[0, true_positives] / true_positives[-1]


def pauc_80(labels: list[int], scores: list[float]) -> float | None:
    """ISIC 2024's partial AUC above 80 % sensitivity (0 to 0.2), as the server computes it: flip labels and
    scores, cut the flipped ROC curve at a false-positive rate of 0.2 and take the area under it."""
    truth, values = np.asarray(labels), np.asarray(scores, dtype=float)
    if len(set(labels)) < 2:
        return None
    fpr, tpr = roc_points(1 - truth, -values)
    stop = int(np.searchsorted(fpr, 0.2, "right"))
    xs = np.append(fpr[:stop], 0.2)
    ys = np.append(tpr[:stop], np.interp(0.2, fpr[stop - 1 : stop + 1], tpr[stop - 1 : stop + 1]))
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2))


def at_threshold(labels: list[int], scores: list[float]) -> tuple[float | None, float | None]:
    """Sensitivity and specificity when a probability above 0.5 counts as malignant (as the server decides)."""
    truth, decided = np.asarray(labels) == 1, np.asarray(scores) > 0.5
    positives, negatives = int(truth.sum()), int((~truth).sum())
    sensitivity = int((truth & decided).sum()) / positives if positives else None
    specificity = int((~truth & ~decided).sum()) / negatives if negatives else None
    return sensitivity, specificity


def write_png(path: str, image: np.ndarray) -> None:
    """An RGB uint8 array as a PNG file, with the standard library only."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)))
        handle.write(chunk(b"IEND", b""))


def look(path: str, per_class: int = 8) -> None:
    """A contact sheet: benign lesions in the top row, malignant ones in the bottom row."""
    images, _ids, labels = read_split("train")
    rows = []
    for label in (0, 1):
        chosen = list(images[labels == label][:per_class])
        chosen += [np.zeros_like(images[0])] * (per_class - len(chosen))
        rows.append(np.concatenate(chosen, axis=1))
    write_png(path, np.concatenate(rows, axis=0))
    print(f"wrote {path}: top row benign, bottom row malignant")


def run(submission: str, time_limit: float, config: dict, seed: int | None = None) -> int:
    work = tempfile.mkdtemp(prefix="workshop-local-")
    try:
        data_dir, code_dir, out_dir = (os.path.join(work, name) for name in ("data", "code", "out"))
        for folder in (data_dir, code_dir, out_dir):
            os.makedirs(folder)
        hidden = prepare_data(data_dir)
        shutil.copyfile(submission, os.path.join(code_dir, "submission.py"))
        spec = {
            "image_size": config["image_size"],
            "time_limit": time_limit,
            "predict_reserve_seconds": 8,
            "class_names": config["class_names"],
            "module": "submission",
            "code_dir": code_dir,
            "data_dir": data_dir,
            "out_dir": out_dir,
            "weights_dir": None,
            "offline": False,  # on your computer Keras downloads the ImageNet weights itself
            "seed": seed,  # None: the harness draws one; report() prints it
        }
        spec_path = os.path.join(work, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        subprocess.run([sys.executable, os.path.join(KIT, "harness.py"), spec_path], check=False, env=env)
        return report(out_dir, hidden)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(out_dir: str, hidden: dict[str, int]) -> int:
    with open(os.path.join(out_dir, "status.json"), encoding="utf-8") as handle:
        status = json.load(handle)
    print("-" * 60)
    for note in status.get("notes", []):
        print(f"note: {note}")
    seed = (status.get("run_info") or {}).get("seed")
    if seed is not None:
        print(f"seed {seed} (run again with --seed {seed} to repeat this run)")
    if not status.get("ok"):
        if status.get("traceback"):
            print(status["traceback"].rstrip())
        print(f"FAILED ({status.get('error_kind')}): {status.get('message')}")
        return 1
    with open(os.path.join(out_dir, "predictions.csv"), newline="", encoding="utf-8") as handle:
        predictions = {row["image_id"]: float(row["malignant"]) for row in csv.DictReader(handle)}
    ids = sorted(hidden)
    labels, scores = [hidden[image_id] for image_id in ids], [predictions[image_id] for image_id in ids]
    after = f"on {len(ids)} held-back sample images (after {status['seconds']:.0f} s)"
    print(f"local ROC AUC {_shown(roc_auc(labels, scores))} {after}")
    print(f"partial AUC above 80 % sensitivity {_shown(pauc_80(labels, scores))} (0 to 0.2, ranks the open challenge)")
    sensitivity, specificity = at_threshold(labels, scores)
    print(f"at the threshold 0.5: sensitivity {_shown(sensitivity)}, specificity {_shown(specificity)}")
    print("The sample is small, so this score is rough; the server scores on its own held-out test images.")
    return 0


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    with open(os.path.join(KIT, "kit.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    parser = argparse.ArgumentParser(description=f"Train a submission for '{config['title']}' locally.")
    parser.add_argument("file", nargs="?", default=os.path.join(KIT, "starter.py"), help="default: starter.py")
    parser.add_argument("--time-limit", type=float, default=config["time_limit"], help="seconds (as the server)")
    parser.add_argument("--seed", type=int, default=None, help="seed Python, NumPy and TensorFlow (default: random)")
    parser.add_argument("--look", action="store_true", help="write examples.png with sample images and stop")
    args = parser.parse_args(argv)
    if args.look:
        look(os.path.join(os.getcwd(), "examples.png"))
        return 0
    if args.seed is not None and not 0 <= args.seed < 2**31:
        parser.error("--seed must be a whole number from 0 to 2147483647")
    return run(args.file, args.time_limit, config, args.seed)


if __name__ == "__main__":
    sys.exit(main())
