"""On-disk layout of a data set, shared by the synthetic generator, the ISIC importer and the grader.

``<data_dir>/<name>/``::

    public/train.npy  public/train.csv   (image_id,label)
    public/val.npy    public/val.csv     (image_id,label)
    public/test.npy   public/test.csv    (image_id)          <- no labels, opaque ids
    private/test_labels.csv              (image_id,label,partition)  partition: public|private
    private/id_map.csv                   (image_id,source_id)
    manifest.json

Rows of each ``.npy`` (uint8, N x H x W x 3, memory-mappable) match the rows of its ``.csv``.
Only ``public/`` is ever mounted into the sandbox.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES = ("benign", "malignant")
SPLITS = ("train", "val", "test")
PARTITIONS = ("public", "private")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class DatasetError(Exception):
    """A data set is missing, incomplete or malformed."""


@dataclass(frozen=True)
class DatasetPaths:
    """Every path of one data set, derived from its root folder."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def test_labels(self) -> Path:
        return self.private / "test_labels.csv"

    @property
    def id_map(self) -> Path:
        return self.private / "id_map.csv"

    def images(self, split: str) -> Path:
        return self.public / f"{split}.npy"

    def index(self, split: str) -> Path:
        return self.public / f"{split}.csv"


def dataset_paths(data_dir: str | Path, name: str) -> DatasetPaths:
    """Paths of data set ``name`` under ``data_dir``; rejects names that could escape it."""
    if not NAME_PATTERN.match(name):
        raise DatasetError(f"invalid data set name {name!r}: use lower-case letters, digits, - and _")
    return DatasetPaths(Path(data_dir) / name)


def open_image_array(path: Path, count: int, size: int) -> np.memmap:
    """Create a uint8 ``.npy`` of ``count`` images of ``size`` x ``size`` x 3, memory-mapped for streaming writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 3))


def load_images(path: Path) -> np.ndarray:
    """Memory-map an image array read-only (never loads the whole set into RAM)."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3:
        raise DatasetError(f"{path}: expected uint8 N x H x W x 3, found {array.dtype} {array.shape}")
    return array


def opaque_ids(rng: np.random.Generator, count: int, hex_digits: int = 16) -> list[str]:
    """``count`` distinct random hex ids, in the order drawn, that say nothing about the image."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids[rng.bytes((hex_digits + 1) // 2).hex()[:hex_digits]] = None
    return list(ids)


def count_classes(labels: Iterable[int]) -> dict[str, int]:
    """Number of images per class name."""
    counts = Counter(int(label) for label in labels)
    return {name: counts[index] for index, name in enumerate(CLASS_NAMES)}


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a UTF-8 CSV with a header row and Unix line ends, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """Read a CSV with a header; names the file and the missing column when it does not fit."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in required if column not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
            return list(reader)
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: file not found") from error


def write_manifest(paths: DatasetPaths, manifest: dict) -> None:
    paths.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(paths: DatasetPaths) -> dict:
    try:
        return json.loads(paths.manifest.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DatasetError(f"data set {paths.name!r} not found (no {paths.manifest})") from error


@dataclass(frozen=True)
class HiddenLabels:
    """Hidden labels of the test split, with the public/private partition of each image."""

    labels: dict[str, int]
    partition: dict[str, str]

    def ids(self, partition: str) -> list[str]:
        return [image_id for image_id, part in self.partition.items() if part == partition]


def read_test_labels(paths: DatasetPaths) -> HiddenLabels:
    rows = read_csv(paths.test_labels, ("image_id", "label", "partition"))
    labels: dict[str, int] = {}
    partition: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        if row["label"] not in ("0", "1") or row["partition"] not in PARTITIONS:
            raise DatasetError(f"{paths.test_labels}: row {line}: bad label or partition")
        labels[row["image_id"]] = int(row["label"])
        partition[row["image_id"]] = row["partition"]
    return HiddenLabels(labels, partition)


def read_test_ids(paths: DatasetPaths) -> list[str]:
    return [row["image_id"] for row in read_csv(paths.index("test"), ("image_id",))]


def list_datasets(data_dir: str | Path) -> list[str]:
    root = Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(
        child.name for child in root.iterdir() if NAME_PATTERN.match(child.name) and (child / "manifest.json").is_file()
    )


def check_dataset(paths: DatasetPaths) -> dict:
    """Verify that every file of the layout exists and that array rows match CSV rows; returns the manifest."""
    manifest = read_manifest(paths)
    for split in SPLITS:
        columns = ("image_id",) if split == "test" else ("image_id", "label")
        rows = read_csv(paths.index(split), columns)
        if split == "test" and "label" in (rows[0] if rows else {}):
            raise DatasetError(f"{paths.index(split)}: the public test index must not carry labels")
        images = load_images(paths.images(split))
        if len(images) != len(rows):
            raise DatasetError(f"{paths.images(split)}: {len(images)} images but {len(rows)} rows in {split}.csv")
    test_ids = set(read_test_ids(paths))
    hidden = read_test_labels(paths)
    if set(hidden.labels) != test_ids:
        raise DatasetError(f"{paths.test_labels}: ids do not match public/test.csv")
    return manifest


def class_balance(paths: DatasetPaths) -> dict[str, dict[str, int]]:
    """Images per class in train and val (from the public CSVs) and in test (from the hidden labels)."""
    balance = {}
    for split in ("train", "val"):
        labels = [row["label"] for row in read_csv(paths.index(split), ("image_id", "label"))]
        balance[split] = {name: labels.count(str(index)) for index, name in enumerate(CLASS_NAMES)}
    hidden = read_test_labels(paths)
    for partition in PARTITIONS:
        balance[f"test_{partition}"] = count_classes(hidden.labels[image_id] for image_id in hidden.ids(partition))
    return balance


def sample_indices(paths: DatasetPaths, split: str, label: int, count: int) -> list[int]:
    """Rows of ``split`` with ``label``, spread evenly over the split (for thumbnail grids)."""
    rows = read_csv(paths.index(split), ("image_id", "label"))
    matching = [index for index, row in enumerate(rows) if row["label"] == str(label)]
    step = max(1, len(matching) // max(1, count))
    return matching[::step][:count]


def thumbnail_png(paths: DatasetPaths, split: str, index: int, size: int = 96) -> bytes:
    """One stored image as a PNG, for the instructor's data page."""
    import io

    from PIL import Image

    if split not in ("train", "val"):
        raise DatasetError(f"no thumbnails for split {split!r}")
    images = load_images(paths.images(split))
    if not 0 <= index < len(images):
        raise DatasetError(f"{split} has no image {index}")
    image = Image.fromarray(np.asarray(images[index]))
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
