"""Tests of the synthetic data set generator: layout, determinism, labels, hidden test split, ABCD statistics."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from grader.data import CLASS_NAMES, DatasetPaths, check_dataset, dataset_paths, read_test_labels
from grader.data.lesions import render_image, sample_lesion
from grader.data.synth import generate_synthetic, image_rng

SMALL = {"train": 40, "val": 10, "test": 20, "size": 32}


def make_set(root: Path, name: str = "syn", **overrides: object) -> tuple[DatasetPaths, dict]:
    """Generate a small data set under ``root`` and return its paths and manifest."""
    paths = dataset_paths(root, name)
    manifest = generate_synthetic(paths, **{**SMALL, **overrides})
    return paths, manifest


@pytest.fixture
def small_set(tmp_path: Path) -> tuple[DatasetPaths, dict]:
    return make_set(tmp_path)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def all_files(paths: DatasetPaths) -> dict[str, bytes]:
    """Every file of a data set, by path relative to its root."""
    return {
        str(path.relative_to(paths.root)): path.read_bytes() for path in sorted(paths.root.rglob("*")) if path.is_file()
    }


def test_layout_passes_check_dataset(small_set: tuple[DatasetPaths, dict]) -> None:
    paths, manifest = small_set
    assert check_dataset(paths) == manifest
    assert json.loads(paths.manifest.read_text()) == manifest
    assert manifest["source"] == manifest["format"] == "synthetic"
    assert manifest["class_names"] == list(CLASS_NAMES)
    assert manifest["size"] == 32 and manifest["seed"] == 0
    assert isinstance(manifest["generator_version"], int)
    assert manifest["licence_counts"] == {"synthetic (CC0)": 70}
    assert manifest["requested_counts"]["train"] == 40 and manifest["requested_counts"]["test"] == 20
    assert manifest["fractions"] == [0.571429, 0.142857, 0.285714] and manifest["public_fraction"] == 0.5
    for split, count in (("train", 40), ("val", 10), ("test", 20)):
        images = np.load(paths.images(split))
        assert images.dtype == np.uint8 and images.shape == (count, 32, 32, 3)
        assert sum(manifest["counts"][split].values()) == count


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    first, _ = make_set(tmp_path / "a", seed=7)
    second, _ = make_set(tmp_path / "b", seed=7)
    assert all_files(first) == all_files(second)


def test_different_seed_gives_different_images(tmp_path: Path) -> None:
    first, _ = make_set(tmp_path / "a", seed=1)
    second, _ = make_set(tmp_path / "b", seed=2)
    for split in ("train", "val", "test"):
        assert not np.array_equal(np.load(first.images(split)), np.load(second.images(split)))
    assert read_rows(first.index("test"))[1] != read_rows(second.index("test"))[1]


def test_each_image_depends_only_on_seed_split_and_index(small_set: tuple[DatasetPaths, dict]) -> None:
    """Rendering one image on its own gives the stored row, so a worker pool could not change the output."""
    paths, _ = small_set
    images = np.load(paths.images("train"))
    _, rows = read_rows(paths.index("train"))
    for index in (0, 17, 39):
        rng = image_rng(0, "train", index)
        alone = render_image(rng, sample_lesion(rng, int(rows[index]["label"])), 32)
        assert np.array_equal(alone, images[index])


def test_every_split_has_the_malignant_fraction(tmp_path: Path) -> None:
    paths, manifest = make_set(tmp_path, train=100, val=20, test=40, malignant_fraction=0.3)
    hidden = read_test_labels(paths)
    labels = {
        "train": [int(row["label"]) for row in read_rows(paths.index("train"))[1]],
        "val": [int(row["label"]) for row in read_rows(paths.index("val"))[1]],
        "test": list(hidden.labels.values()),
    }
    for split, expected in (("train", 30), ("val", 6), ("test", 12)):
        assert sum(labels[split]) == expected
        assert manifest["counts"][split] == {"benign": len(labels[split]) - expected, "malignant": expected}
    assert labels["train"] != sorted(labels["train"]), "labels must be shuffled within a split"


def test_test_ids_are_opaque(small_set: tuple[DatasetPaths, dict]) -> None:
    paths, _ = small_set
    test_ids = [row["image_id"] for row in read_rows(paths.index("test"))[1]]
    assert all(re.fullmatch(r"[0-9a-f]{16}", image_id) for image_id in test_ids)
    assert len(set(test_ids)) == len(test_ids)
    known = {row["image_id"] for split in ("train", "val") for row in read_rows(paths.index(split))[1]}
    assert not known & set(test_ids)
    for path in paths.public.iterdir():
        assert "benign" not in path.name and "malignant" not in path.name
        if path.suffix == ".csv":
            text = path.read_text().lower()
            assert "benign" not in text and "malignant" not in text


def test_test_order_is_shuffled(small_set: tuple[DatasetPaths, dict]) -> None:
    paths, _ = small_set
    _, mapping = read_rows(paths.id_map)
    sources = [int(row["source_id"].rsplit("-", 1)[1]) for row in mapping]
    assert sorted(sources) == list(range(20))
    assert sources != sorted(sources)
    assert all(row["source_id"].startswith("synthetic-test-") for row in mapping)


def test_public_folder_holds_no_test_labels(small_set: tuple[DatasetPaths, dict]) -> None:
    paths, _ = small_set
    expected = {f"{split}.{ext}" for split in ("train", "val", "test") for ext in ("npy", "csv")}
    assert {path.name for path in paths.public.iterdir()} == expected
    assert read_rows(paths.index("test"))[0] == ["image_id"]
    for split in ("train", "val"):
        assert read_rows(paths.index(split))[0] == ["image_id", "label"]
    assert read_rows(paths.test_labels)[0] == ["image_id", "label", "partition"]
    assert read_rows(paths.id_map)[0] == ["image_id", "source_id"]


@pytest.mark.parametrize(("test", "public_fraction"), [(20, 0.5), (4, 0.1), (9, 0.9), (40, 0.3)])
def test_partitions_are_stratified(tmp_path: Path, test: int, public_fraction: float) -> None:
    paths, manifest = make_set(tmp_path, test=test, public_fraction=public_fraction)
    hidden = read_test_labels(paths)
    for label, name in enumerate(CLASS_NAMES):
        members = [image_id for image_id, value in hidden.labels.items() if value == label]
        public = [image_id for image_id in members if hidden.partition[image_id] == "public"]
        assert 1 <= len(public) <= len(members) - 1, "both partitions need both classes"
        assert len(public) == min(max(round(len(members) * public_fraction), 1), len(members) - 1)
        assert manifest["counts"]["test_public"][name] == len(public)
        assert manifest["counts"]["test_private"][name] == len(members) - len(public)


def lesion_sample(label: int, count: int) -> list:
    """ABCD features of ``count`` lesions of one class, from independent streams."""
    return [sample_lesion(np.random.default_rng([123, label, index]), label) for index in range(count)]


def test_malignant_features_follow_the_abcd_rule() -> None:
    benign, malignant = lesion_sample(0, 400), lesion_sample(1, 400)

    def mean(features: list, name: str) -> float:
        return float(np.mean([getattr(feature, name) for feature in features]))

    for name in ("asymmetry", "irregularity", "diameter", "variegation"):
        assert mean(malignant, name) > mean(benign, name) + 0.1, name
    atypical = {"black", "blue_grey", "red", "white"}

    def atypical_colours(features: list) -> float:
        return float(np.mean([len(atypical & set(feature.extra_colours)) for feature in features]))

    assert atypical_colours(malignant) > atypical_colours(benign) + 0.5


def test_classes_overlap() -> None:
    """Some benign lesions look atypical and some malignant look innocent, so the task is not trivial."""
    benign = np.array([feature.atypia for feature in lesion_sample(0, 400)])
    malignant = np.array([feature.atypia for feature in lesion_sample(1, 400)])
    assert np.mean(benign > 0.5) > 0.05
    assert np.mean(malignant < 0.5) > 0.05
    pairwise_auc = np.mean(malignant[:, None] > benign[None, :])
    assert 0.8 < pairwise_auc < 0.97


def pixel_statistics(label: int, count: int, size: int = 48) -> tuple[float, float]:
    """Mean fraction of dark-or-blue pixels and mean per-image colour spread of rendered lesions."""
    dark_or_blue, spread = [], []
    for index in range(count):
        rng = np.random.default_rng([321, label, index])
        image = render_image(rng, sample_lesion(rng, label), size).astype(np.float64)
        luminance = image.mean(axis=2)
        bluish = image[..., 2] > image[..., 0]
        dark_or_blue.append(np.mean((luminance < 70) | bluish))
        spread.append(image.reshape(-1, 3).std(axis=0).mean())
    return float(np.mean(dark_or_blue)), float(np.mean(spread))


def test_malignant_pixels_are_darker_bluer_and_more_varied() -> None:
    benign_dark, benign_spread = pixel_statistics(0, 150)
    malignant_dark, malignant_spread = pixel_statistics(1, 150)
    assert malignant_dark > 1.5 * benign_dark
    assert malignant_spread > benign_spread + 5.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train": 1}, "train=1 is too small"),
        ({"val": 0}, "val=0 is too small"),
        ({"test": 3}, "test=3 is too small"),
        ({"train": 2.5}, "train must be an integer"),
        ({"size": 15}, "size must be between 16 and 512"),
        ({"size": 513}, "size must be between 16 and 512"),
        ({"malignant_fraction": 0.0}, "malignant_fraction must be a number strictly between 0 and 1"),
        ({"malignant_fraction": 1.0}, "malignant_fraction must be a number strictly between 0 and 1"),
        ({"public_fraction": 1.5}, "public_fraction must be a number strictly between 0 and 1"),
        ({"public_fraction": "half"}, "public_fraction must be a number"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": True}, "seed must be an integer"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_set(tmp_path, **overrides)
    assert not (tmp_path / "syn").exists(), "nothing is written when the arguments are rejected"
