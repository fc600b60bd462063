"""A starter kit to work on an exercise offline: the starter, the README, a small public sample and a local runner.

The zip holds only what the sandbox would show a job anyway -- training and validation images with
their labels -- never a test image or a test label. The local runner carves its own "test" split out
of the sampled validation images and runs the very harness the server runs (``grader/harness.py``,
copied into the kit), so ``train(data)`` behaves the same on a laptop as on the server.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from grader.data.layout import CLASS_NAMES, DatasetPaths, load_images, read_csv
from grader.exercises import Exercise
from grader.sandbox import HARNESS

RUNNER = Path(__file__).with_name("local_runner.py")  # standalone: becomes the kit's run_local.py
DEFAULT_SAMPLE_SIZE = 300
VAL_SHARE = 0.3  # of the sample; the local runner splits it again into validation and "test"


def sample_rows(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Row numbers of a class-stratified random sample (at least two of each class when there are), sorted."""
    rng = np.random.default_rng(seed)
    count = min(count, len(labels))
    chosen = []
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        share = round(count * len(members) / max(len(labels), 1))
        take = min(len(members), max(share, 2))
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """Images scaled down to the exercise's size (never up: the harness resizes as the server does)."""
    if images.shape[1] <= size:
        return np.ascontiguousarray(images)
    return np.stack(
        [np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS)) for image in images]
    )


def split_sample(paths: DatasetPaths, split: str, count: int, size: int, seed: int) -> tuple[bytes, bytes]:
    """One labelled split of the sample as (.npy bytes, .csv bytes)."""
    rows = read_csv(paths.index(split), ("image_id", "label"))
    labels = np.array([int(row["label"]) for row in rows])
    picked = sample_rows(labels, count, seed)
    images = resized(load_images(paths.images(split))[picked], size)
    array = io.BytesIO()
    np.save(array, images, allow_pickle=False)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["image_id", "label"])
    writer.writerows((rows[row]["image_id"], int(labels[row])) for row in picked)
    return array.getvalue(), table.getvalue().encode()


def kit_config(exercise: Exercise, dataset: DatasetPaths) -> dict:
    """What the local runner needs to imitate the server's job."""
    return {
        "slug": exercise.slug,
        "title": exercise.title,
        "image_size": exercise.image_size,
        "time_limit": exercise.time_limit,
        "allowed_weights": list(exercise.allowed_weights),
        "class_names": list(CLASS_NAMES),
        "dataset": dataset.name,
    }


def build_starter_kit(
    exercise: Exercise, dataset: DatasetPaths, sample_size: int = DEFAULT_SAMPLE_SIZE, seed: int = 0
) -> bytes:
    """The zip of one exercise's starter kit, with ``sample_size`` labelled images drawn from train and val."""
    if sample_size < 16:
        raise ValueError("sample_size must be at least 16 images")
    folder = f"{exercise.slug}-starter-kit"
    val_count = max(8, round(sample_size * VAL_SHARE))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as kit:
        kit.writestr(f"{folder}/starter.py", exercise.starter)
        kit.writestr(f"{folder}/README.md", exercise.readme)
        kit.writestr(f"{folder}/README_LOCAL.md", readme_local(exercise, folder))
        kit.writestr(f"{folder}/run_local.py", RUNNER.read_text(encoding="utf-8"))
        kit.writestr(f"{folder}/harness.py", HARNESS.read_text(encoding="utf-8"))
        kit.writestr(f"{folder}/kit.json", json.dumps(kit_config(exercise, dataset), indent=2) + "\n")
        for split, count in (("train", sample_size - val_count), ("val", val_count)):
            images, table = split_sample(dataset, split, count, exercise.image_size, seed)
            kit.writestr(f"{folder}/data/{split}.npy", images)
            kit.writestr(f"{folder}/data/{split}.csv", table)
    return buffer.getvalue()


def readme_local(exercise: Exercise, folder: str) -> str:
    """How to use the kit: what to install, how to run, what the local score means."""
    weights = ", ".join(exercise.allowed_weights) or "none"
    return f"""# Working on "{exercise.title}" on your own computer

This kit runs your `train(data)` exactly as the workshop server does -- the same harness, the same
`data` object, the same time limit ({exercise.time_limit} s) -- on a small public sample of the images.

## Install (once)

Python 3.10 or newer, then:

    python -m venv .venv && . .venv/bin/activate      # Windows: .venv\\Scripts\\activate
    pip install tensorflow numpy

## Run

    cd {folder}
    python run_local.py                 # trains starter.py and prints a local ROC AUC
    python run_local.py my_model.py     # trains your own file
    python run_local.py --look          # writes examples.png: benign on top, malignant below

Per-epoch loss and metrics are printed as training runs; the notes at the end say when training
was cut short by the time limit (`--time-limit SECONDS` changes it).

Each run seeds Python's `random`, NumPy and TensorFlow with one number (your code sees it as
`data.seed`) and prints it at the end. `python run_local.py --seed 1234` repeats a run; the seed of a
run on the server is in its run record, on the submission page.

## What is in here

- `starter.py`, `README.md`: the exercise, as on the server.
- `data/`: training and validation images with their labels, a sample of the server's data set.
  There are no test images: `run_local.py` keeps half of the sampled validation images apart as a
  local "test" split and scores the predictions on them itself.
- `harness.py`: the program the server runs around your code; `run_local.py` starts it.

## What the local score means

The sample is small, so the local ROC AUC moves by several hundredths from run to run. It tells you
whether your code runs and learns; the leaderboard's score comes from the server's own held-out
test images.

Pretrained weights allowed in this exercise: {weights}. On your computer Keras downloads them the
first time (`weights="imagenet"`); on the server they are already there.
"""
