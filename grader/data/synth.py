"""Deterministic synthetic dermoscopy-like data set: benign vs malignant lesions drawn after the ABCD rule.

The lesions themselves are drawn by :mod:`grader.data.lesions`. The task is learnable but not trivial: on the
default set at 64 px, a small CNN trained from scratch for 5 epochs reaches a test ROC AUC of roughly
0.72-0.89 (about 0.85 after 10 epochs), while a logistic regression on the mean colour of the image reaches
0.75-0.80.

Each image has its own random stream (seed, split, index), so the output depends only on the arguments,
never on the order or the process in which images are rendered.
"""

from __future__ import annotations

import numpy as np

from grader.data.layout import (
    CLASS_NAMES,
    SPLITS,
    DatasetPaths,
    count_classes,
    opaque_ids,
    open_image_array,
    write_csv,
    write_manifest,
)
from grader.data.lesions import render_image, sample_lesion

GENERATOR_VERSION = 1


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Random stream of one image, independent of every other image."""
    return np.random.default_rng([seed, SPLITS.index(split), 1, index])


def split_rng(seed: int, split: str) -> np.random.Generator:
    """Random stream for the labels, order, ids and partitions of one split."""
    return np.random.default_rng([seed, SPLITS.index(split), 0])


def class_counts(total: int, malignant_fraction: float, minimum: int) -> tuple[int, int]:
    """(benign, malignant) counts of a split, at least ``minimum`` of each class."""
    malignant = min(max(round(total * malignant_fraction), minimum), total - minimum)
    return total - malignant, malignant


def stratified_labels(rng: np.random.Generator, benign: int, malignant: int) -> np.ndarray:
    """Labels with exactly the given class counts, in random order."""
    labels = np.array([0] * benign + [1] * malignant, dtype=np.int64)
    return rng.permutation(labels)


def stratified_partition(rng: np.random.Generator, labels: np.ndarray, public_fraction: float) -> list[str]:
    """'public' or 'private' per image: ``public_fraction`` of each class public, both classes in both parts."""
    partition = ["private"] * len(labels)
    for label in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        public = min(max(round(len(members) * public_fraction), 1), len(members) - 1)
        for index in members[:public]:
            partition[int(index)] = "public"
    return partition


def validate_arguments(
    seed: int, counts: dict[str, int], size: int, malignant_fraction: float, public_fraction: float
) -> None:
    """Reject arguments that cannot give both classes in every split and every test partition."""
    for name, value in {"seed": seed, "size": size, **counts}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    minimum = {"train": 2, "val": 2, "test": 4}
    for split, count in counts.items():
        if count < minimum[split]:
            raise ValueError(
                f"{split}={count} is too small: need at least {minimum[split]} images so that both classes appear"
                + (" in each test partition" if split == "test" else "")
            )
    if not 16 <= size <= 512:
        raise ValueError(f"size must be between 16 and 512 pixels, got {size}")
    for name, fraction in {"malignant_fraction": malignant_fraction, "public_fraction": public_fraction}.items():
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
            raise ValueError(f"{name} must be a number strictly between 0 and 1, got {fraction!r}")


def write_split_images(
    paths: DatasetPaths, split: str, seed: int, sources: list[int], labels: np.ndarray, size: int
) -> None:
    """Render image ``sources[row]`` of ``split`` with label ``labels[row]`` into row ``row`` of its .npy."""
    images = open_image_array(paths.images(split), len(sources), size)
    for row, source in enumerate(sources):
        rng = image_rng(seed, split, source)
        images[row] = render_image(rng, sample_lesion(rng, int(labels[row])), size)
    images.flush()
    del images


def write_labelled_split(
    paths: DatasetPaths, split: str, seed: int, total: int, malignant_fraction: float, size: int
) -> dict[str, int]:
    """Write a train or val split (images + ``image_id,label`` index); returns its class counts."""
    labels = stratified_labels(split_rng(seed, split), *class_counts(total, malignant_fraction, minimum=1))
    write_split_images(paths, split, seed, list(range(total)), labels, size)
    rows = [(f"syn-{split}-{index:05d}", int(label)) for index, label in enumerate(labels)]
    write_csv(paths.index(split), ("image_id", "label"), rows)
    return count_classes(labels)


def write_test_split(
    paths: DatasetPaths, seed: int, total: int, malignant_fraction: float, public_fraction: float, size: int
) -> dict[str, dict[str, int]]:
    """Write the test split: shuffled images with opaque ids, hidden labels and partitions; returns class counts."""
    rng = split_rng(seed, "test")
    source_labels = stratified_labels(rng, *class_counts(total, malignant_fraction, minimum=2))
    source_partition = stratified_partition(rng, source_labels, public_fraction)
    order = [int(source) for source in rng.permutation(total)]
    ids = opaque_ids(rng, total)
    labels = source_labels[order]
    partition = [source_partition[source] for source in order]
    write_split_images(paths, "test", seed, order, labels, size)
    write_csv(paths.index("test"), ("image_id",), [(image_id,) for image_id in ids])
    write_csv(
        paths.test_labels,
        ("image_id", "label", "partition"),
        [(image_id, int(label), part) for image_id, label, part in zip(ids, labels, partition, strict=True)],
    )
    write_csv(
        paths.id_map,
        ("image_id", "source_id"),
        [(image_id, f"synthetic-test-{source:05d}") for image_id, source in zip(ids, order, strict=True)],
    )
    return {
        "test": count_classes(labels),
        **{
            f"test_{part}": count_classes([lab for lab, p in zip(labels, partition, strict=True) if p == part])
            for part in ("public", "private")
        },
    }


def generate_synthetic(
    paths: DatasetPaths,
    *,
    seed: int = 0,
    train: int = 1000,
    val: int = 200,
    test: int = 400,
    size: int = 96,
    malignant_fraction: float = 0.3,
    public_fraction: float = 0.5,
) -> dict:
    """Write the whole layout under paths.root and return the manifest dict."""
    requested = {"train": train, "val": val, "test": test}
    validate_arguments(seed, requested, size, malignant_fraction, public_fraction)
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val"):
        counts[split] = write_labelled_split(paths, split, seed, requested[split], malignant_fraction, size)
    counts.update(write_test_split(paths, seed, test, malignant_fraction, public_fraction, size))
    manifest = {
        "name": paths.name,
        "source": "synthetic",
        "format": "synthetic",
        "seed": int(seed),
        "size": int(size),
        # the same keys as the ISIC importer's manifest: split fractions, then the test's public share
        "fractions": [round(int(n) / sum(requested.values()), 6) for n in requested.values()],
        "public_fraction": float(public_fraction),
        "malignant_fraction": float(malignant_fraction),
        "requested_counts": {split: int(n) for split, n in requested.items()},
        "counts": counts,
        "class_names": list(CLASS_NAMES),
        "generator_version": GENERATOR_VERSION,
        "licence_counts": {"synthetic (CC0)": int(train + val + test)},
    }
    write_manifest(paths, manifest)
    return manifest
