"""Import an ISIC export (isic-cli folder, ISIC 2020 challenge, HAM10000) into the grader's data set layout.

What it guarantees, and why:

* **No leakage between splits.** Images that share a lesion_id or a patient_id (or that the ISIC 2020
  duplicates file pairs up) form one group; whole groups go to train, val or test, stratified by label, and
  the split is re-checked independently before anything is written.
* **A label-safe test set.** Every image becomes a bare uint8 pixel array (no EXIF, no file name) under an
  opaque hex id drawn from the seeded generator; the mapping to ISIC ids lives in ``private/id_map.csv``.
* **Loud failures.** A metadata file that does not fit raises :class:`ImportFormatError` naming the file,
  the column and the row (rows are numbered like a spreadsheet: the header is row 1). A row whose image
  file is missing or undecodable is an error as well, never a silent skip, so an instructor learns about a
  broken download before the workshop rather than from a smaller test set.
* **Fast, bounded, restartable.** JPEGs are decoded in draft mode (the decoder scales by 1/2, 1/4 or 1/8)
  by a process pool fed a bounded window of small batches; the parent writes each batch into memory-mapped
  arrays. Every decoded image is cached under ``<root>/.cache`` keyed by (path, mtime, file size, target size,
  decoder version), so a re-run, or a run after a crash, only decodes what changed. The data set is built in
  ``<data_dir>/.importing/<name>`` and renamed into place at the end, so a crash never leaves a half data set.
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .datasets import (
    CLASS_NAMES,
    SPLITS,
    DatasetError,
    DatasetPaths,
    check_dataset,
    open_image_array,
    write_csv,
    write_manifest,
)

IMPORTER_VERSION = "1.0"
DROP_REASONS = ("not_dermoscopic", "indeterminate", "unlabelled", "duplicate")


class ImportFormatError(DatasetError):
    """A source file does not fit its format; the message names the file, and the column and row if known."""


# --------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ImportLimits:
    """Pipeline knobs: batch size and in-flight window bound memory; suffixes say which files are images."""

    batch_size: int = 16
    batches_in_flight_per_worker: int = 2
    progress_interval_s: float = 0.5
    image_id_hex_digits: int = 16
    image_suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class DecodeSettings:
    """How one image becomes a square array; every field is part of the cache key."""

    size: int
    use_draft: bool = True
    resample: Image.Resampling = Image.Resampling.BILINEAR
    version: str = "1"  # bump whenever decoding changes, so stale cache entries are not reused


@dataclass(frozen=True)
class ImportOptions:
    """Validated options of one import."""

    size: int = 224
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    public_fraction: float = 0.5
    dermoscopic_only: bool = False
    workers: int = 1
    progress: bool = True
    limits: ImportLimits = field(default_factory=ImportLimits)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {self.fractions}")
        if not 0 <= self.public_fraction <= 1:
            raise ValueError(f"public_fraction must lie in [0, 1], got {self.public_fraction}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")


# --------------------------------------------------------------------------------------------- formats


@dataclass(frozen=True)
class LabelRule:
    """How one metadata column spells benign, malignant and 'no usable label' (compared lower-case)."""

    column: str
    benign: frozenset[str]
    malignant: frozenset[str]
    indeterminate: frozenset[str] = frozenset()

    def decide(self, value: str) -> tuple[int | None, str | None] | None:
        """(label, drop reason) for a cell value, or None when the value is not in the vocabulary."""
        key = value.lower()
        if key in self.benign:
            return 0, None
        if key in self.malignant:
            return 1, None
        if key in self.indeterminate:
            return None, "indeterminate"
        return None

    def expected(self) -> str:
        return ", ".join(sorted(self.benign | self.malignant | self.indeterminate))


@dataclass(frozen=True)
class SourceFormat:
    """Where one export format keeps its metadata and which header names carry what (never positions)."""

    name: str
    metadata_files: tuple[str, ...]  # first one present wins; also used by detect_format
    id_column: str
    required_columns: tuple[str, ...]
    label_rules: tuple[LabelRule, ...]  # per row, the first rule whose column is present and non-empty
    lesion_column: str | None = "lesion_id"
    patient_column: str | None = "patient_id"
    image_type_column: str | None = None
    licence_column: str | None = None
    attribution_column: str | None = None
    duplicates_file: str | None = None
    all_dermoscopic: bool = False  # true when the whole collection is dermoscopic (no image_type column)


FORMATS: dict[str, SourceFormat] = {
    "isic-cli": SourceFormat(
        name="isic-cli",
        metadata_files=("metadata.csv",),
        id_column="isic_id",
        required_columns=("isic_id",),
        label_rules=(
            LabelRule("diagnosis_1", frozenset({"benign"}), frozenset({"malignant"}), frozenset({"indeterminate"})),
            LabelRule(
                "benign_malignant",
                frozenset({"benign"}),
                frozenset({"malignant"}),
                frozenset({"indeterminate", "indeterminate/benign", "indeterminate/malignant"}),
            ),
        ),
        image_type_column="image_type",
        licence_column="copyright_license",
        attribution_column="attribution",
    ),
    "isic2020": SourceFormat(
        name="isic2020",
        metadata_files=("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_GroundTruth.csv"),
        id_column="image_name",
        required_columns=("image_name", "patient_id", "target"),
        label_rules=(LabelRule("target", frozenset({"0"}), frozenset({"1"})),),
        duplicates_file="ISIC_2020_Training_Duplicates.csv",
        all_dermoscopic=True,
    ),
    "ham10000": SourceFormat(
        name="ham10000",
        metadata_files=("HAM10000_metadata.csv",),
        id_column="image_id",
        required_columns=("lesion_id", "image_id", "dx"),
        label_rules=(LabelRule("dx", frozenset({"bkl", "df", "nv", "vasc"}), frozenset({"mel", "bcc", "akiec"})),),
        patient_column=None,  # HAM10000 has no patient ids; grouping is by lesion only
        all_dermoscopic=True,
    ),
}


def detect_format(source: Path) -> str:
    """Name the export format of ``source`` by its metadata CSV; raises when none or several match."""
    source = Path(source)
    if not source.is_dir():
        raise ImportFormatError(f"{source}: not a folder")
    found = [name for name, fmt in FORMATS.items() if _metadata_file(source, fmt) is not None]
    if len(found) == 1:
        return found[0]
    if not found:
        expected = "; ".join(f"{' or '.join(fmt.metadata_files)} ({name})" for name, fmt in FORMATS.items())
        raise ImportFormatError(f"{source}: no known metadata file, expected one of: {expected}")
    raise ImportFormatError(f"{source}: holds metadata of several formats ({', '.join(found)}); pass fmt")


def _metadata_file(source: Path, fmt: SourceFormat) -> Path | None:
    return next((source / name for name in fmt.metadata_files if (source / name).is_file()), None)


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Table:
    """A CSV read by header name, each row with its spreadsheet row number (header = row 1)."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]


@dataclass(frozen=True)
class SourceRow:
    """One metadata row, with its label or the reason it is dropped."""

    source_id: str
    line: int
    label: int | None
    drop_reason: str | None = None
    lesion_id: str = ""
    patient_id: str = ""
    image_type: str = ""
    licence: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class SourceReading:
    """Everything read from the metadata files of one export."""

    fmt: SourceFormat
    metadata_path: Path
    rows: tuple[SourceRow, ...]
    duplicate_pairs: tuple[tuple[str, str], ...] = ()


def read_table(path: Path, required: Sequence[str]) -> Table:
    """Read a UTF-8 CSV (BOM allowed) by header name; names the file and any missing column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = tuple((name or "").strip() for name in reader.fieldnames or ())
            missing = [column for column in required if column not in columns]
            if missing:
                found = ", ".join(columns) or "no header"
                raise ImportFormatError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
            reader.fieldnames = list(columns)
            rows = tuple((reader.line_num, _clean_cells(row)) for row in reader)
    except FileNotFoundError as error:
        raise ImportFormatError(f"{path}: file not found") from error
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"{path}: not UTF-8 text ({error})") from error
    except csv.Error as error:
        raise ImportFormatError(f"{path}: unreadable CSV ({error})") from error
    return Table(path, columns, rows)


def _clean_cells(row: dict[str | None, str | None]) -> dict[str, str]:
    return {key: (value or "").strip() for key, value in row.items() if isinstance(key, str)}


def _row_error(path: Path, line: int, column: str, problem: str) -> ImportFormatError:
    return ImportFormatError(f"{path}: row {line}, column {column!r}: {problem}")


def read_source(source: Path, fmt: SourceFormat, duplicates_csv: Path | None = None) -> SourceReading:
    """Read the metadata (and duplicates file, if any) of an export of format ``fmt``."""
    metadata_path = _metadata_file(source, fmt)
    if metadata_path is None:
        raise ImportFormatError(f"{source}: no {' or '.join(fmt.metadata_files)} for format {fmt.name}")
    table = read_table(metadata_path, fmt.required_columns)
    rules = tuple(rule for rule in fmt.label_rules if rule.column in table.columns)
    if not rules:
        wanted = " or ".join(rule.column for rule in fmt.label_rules)
        raise ImportFormatError(f"{metadata_path}: missing label column, expected {wanted}")
    rows = tuple(_parse_row(fmt, rules, table.path, line, cells) for line, cells in table.rows)
    _reject_repeated_ids(table.path, fmt.id_column, rows)
    duplicates_path = duplicates_csv or (source / fmt.duplicates_file if fmt.duplicates_file else None)
    pairs = (
        read_duplicate_pairs(duplicates_path)
        if duplicates_path and (duplicates_csv or duplicates_path.is_file())
        else ()
    )
    return SourceReading(fmt, metadata_path, rows, pairs)


def _parse_row(
    fmt: SourceFormat, rules: Sequence[LabelRule], path: Path, line: int, cells: dict[str, str]
) -> SourceRow:
    source_id = cells.get(fmt.id_column, "")
    if not source_id:
        raise _row_error(path, line, fmt.id_column, "empty image id")
    label, reason = _row_label(rules, path, line, cells)
    return SourceRow(
        source_id=source_id,
        line=line,
        label=label,
        drop_reason=reason,
        lesion_id=_cell(cells, fmt.lesion_column),
        patient_id=_cell(cells, fmt.patient_column),
        image_type=_cell(cells, fmt.image_type_column),
        licence=_cell(cells, fmt.licence_column),
        attribution=_cell(cells, fmt.attribution_column),
    )


def _cell(cells: dict[str, str], column: str | None) -> str:
    return cells.get(column, "") if column else ""


def _row_label(
    rules: Sequence[LabelRule], path: Path, line: int, cells: dict[str, str]
) -> tuple[int | None, str | None]:
    for rule in rules:
        value = cells.get(rule.column, "")
        if not value:
            continue
        decision = rule.decide(value)
        if decision is None:
            raise _row_error(path, line, rule.column, f"unknown label {value!r}, expected one of {rule.expected()}")
        return decision
    return None, "unlabelled"


def _reject_repeated_ids(path: Path, column: str, rows: Iterable[SourceRow]) -> None:
    first_line: dict[str, int] = {}
    for row in rows:
        if row.source_id in first_line:
            raise _row_error(path, row.line, column, f"id {row.source_id!r} already on row {first_line[row.source_id]}")
        first_line[row.source_id] = row.line


def read_duplicate_pairs(path: Path) -> tuple[tuple[str, str], ...]:
    """Read an ISIC 2020 style duplicates file (image_name_1,image_name_2), one pair per row."""
    table = read_table(path, ("image_name_1", "image_name_2"))
    pairs = []
    for line, cells in table.rows:
        for column in ("image_name_1", "image_name_2"):
            if not cells[column]:
                raise _row_error(path, line, column, "empty image name")
        pairs.append((cells["image_name_1"], cells["image_name_2"]))
    return tuple(pairs)


# ----------------------------------------------------------------------------------- selection + groups


class UnionFind:
    """Disjoint sets of strings; merges images that share a lesion, a patient or a duplicate pair."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: str, second: str) -> None:
        roots = sorted((self.find(first), self.find(second)))
        self.parent[roots[1]] = roots[0]


@dataclass(frozen=True)
class Selection:
    """The rows kept after filtering, the group of each, and how many rows were dropped for what reason."""

    kept: tuple[SourceRow, ...]
    group_of: dict[str, str]
    dropped: dict[str, int]


def select_rows(reading: SourceReading, dermoscopic_only: bool) -> Selection:
    """Drop unusable rows (filter, label, duplicate) and group the rest by lesion, patient and duplicate."""
    if dermoscopic_only and not reading.fmt.all_dermoscopic and reading.fmt.image_type_column:
        _require_image_types(reading)
    reasons = {row.source_id: _drop_reason(row, dermoscopic_only, reading.fmt) for row in reading.rows}
    usable = [row.source_id for row in reading.rows if reasons[row.source_id] is None]
    for source_id in _duplicates_to_drop(reading.duplicate_pairs, usable):
        reasons[source_id] = "duplicate"
    groups = group_images(reading.rows, reading.duplicate_pairs)
    kept = tuple(row for row in reading.rows if reasons[row.source_id] is None)
    dropped = Counter(reason for reason in reasons.values() if reason)
    return Selection(
        kept,
        {row.source_id: groups.find(row.source_id) for row in kept},
        {r: dropped[r] for r in DROP_REASONS},
    )


def _require_image_types(reading: SourceReading) -> None:
    if not any(row.image_type for row in reading.rows):
        column = reading.fmt.image_type_column
        raise ImportFormatError(
            f"{reading.metadata_path}: dermoscopic_only needs column {column!r}, which is absent or empty"
        )


def _drop_reason(row: SourceRow, dermoscopic_only: bool, fmt: SourceFormat) -> str | None:
    if dermoscopic_only and not fmt.all_dermoscopic and "dermoscopic" not in row.image_type.lower():
        return "not_dermoscopic"
    return row.drop_reason


def _duplicates_to_drop(pairs: Sequence[tuple[str, str]], usable: Sequence[str]) -> list[str]:
    """Keep one image per cluster of duplicates: the first usable one in file order (pair (a, b) keeps a)."""
    usable_ids = set(usable)
    clusters = UnionFind()
    order: list[str] = []
    for first, second in pairs:
        clusters.union(first, second)
        order.extend((first, second))
    keeper: dict[str, str] = {}
    drop = []
    for source_id in dict.fromkeys(order):
        if source_id not in usable_ids:
            continue
        root = clusters.find(source_id)
        if keeper.setdefault(root, source_id) != source_id:
            drop.append(source_id)
    return drop


def group_images(rows: Iterable[SourceRow], duplicate_pairs: Iterable[tuple[str, str]]) -> UnionFind:
    """Union every image with its lesion, patient and duplicate; dropped rows only ever merge more."""
    groups = UnionFind()
    for row in rows:
        groups.find(row.source_id)
        if row.lesion_id:
            groups.union(row.source_id, f"lesion\0{row.lesion_id}")
        if row.patient_id:
            groups.union(row.source_id, f"patient\0{row.patient_id}")
    for first, second in duplicate_pairs:
        groups.union(first, second)
    return groups


# --------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class PlannedImage:
    """One output image: its opaque id, where it comes from and where it goes."""

    image_id: str
    row: SourceRow
    path: Path
    group: str
    split: str
    partition: str = ""  # "public" or "private" for test images


def deal_groups(
    groups: dict[str, tuple[int, int]],
    names: Sequence[str],
    fractions: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, str]:
    """Deal groups {key: (label, images)} to ``names`` per label, each to the one furthest below its share."""
    assignment: dict[str, str] = {}
    for label in (0, 1):
        keys = sorted(key for key, (group_label, _) in groups.items() if group_label == label)
        keys = [keys[index] for index in rng.permutation(len(keys))]
        total = sum(groups[key][1] for key in keys)
        filled = [0.0] * len(names)
        for key in keys:
            deficits = [fraction * total - count for fraction, count in zip(fractions, filled, strict=True)]
            chosen = int(np.argmax(deficits))
            assignment[key] = names[chosen]
            filled[chosen] += groups[key][1]
    return assignment


def plan_splits(selection: Selection, image_files: dict[str, Path], options: ImportOptions) -> list[PlannedImage]:
    """Assign groups to splits and test partitions, and give every image an opaque id; sorted by id."""
    split_rng, partition_rng, id_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(options.seed).spawn(3))
    groups: dict[str, tuple[int, int]] = {}
    for row in selection.kept:
        key = selection.group_of[row.source_id]
        label, count = groups.get(key, (0, 0))
        groups[key] = (max(label, row.label or 0), count + 1)
    split_of = deal_groups(groups, SPLITS, options.fractions, split_rng)
    test_groups = {key: value for key, value in groups.items() if split_of[key] == "test"}
    shares = (options.public_fraction, 1 - options.public_fraction)
    partition_of = deal_groups(test_groups, ("public", "private"), shares, partition_rng)
    kept = sorted(selection.kept, key=lambda row: row.source_id)
    ids = opaque_ids(len(kept), id_rng, options.limits.image_id_hex_digits)
    planned = []
    for image_id, row in zip(ids, kept, strict=True):
        group = selection.group_of[row.source_id]
        where = (split_of[group], partition_of.get(group, ""))
        planned.append(PlannedImage(image_id, row, image_files[row.source_id], group, *where))
    return sorted(planned, key=lambda image: image.image_id)


def opaque_ids(count: int, rng: np.random.Generator, hex_digits: int) -> list[str]:
    """``count`` distinct random hex ids that carry nothing about the image."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids[rng.bytes((hex_digits + 1) // 2).hex()[:hex_digits]] = None
    return list(ids)


def check_no_leakage(images: Sequence[PlannedImage]) -> None:
    """Re-check, apart from the grouping, that no lesion, patient or group spans two splits or partitions."""
    for attribute in ("group", "lesion_id", "patient_id"):
        places: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for image in images:
            key = image.group if attribute == "group" else getattr(image.row, attribute)
            if key:
                places[key].add((image.split, image.partition))
        for key, where in places.items():
            if len(where) > 1:
                raise DatasetError(f"leak: {attribute} {key!r} spans {sorted(where)}; refusing to write the data set")


# --------------------------------------------------------------------------------------------- images


BatchResult = tuple[np.ndarray, list[tuple[int, str]]]  # decoded images, (position, error) failures


def index_images(source: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """Map file stem to image path anywhere under ``source``: JPEG before PNG, then shallowest, then name."""
    best: dict[str, tuple[tuple[int, int, str], Path]] = {}
    for folder, subfolders, files in os.walk(source):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        depth = len(Path(folder).relative_to(source).parts)
        for name in files:
            stem, suffix = os.path.splitext(name)
            if name.startswith(".") or suffix.lower() not in suffixes:
                continue
            rank = (suffixes.index(suffix.lower()), depth, name)
            if stem not in best or rank < best[stem][0]:
                best[stem] = (rank, Path(folder) / name)
    return {stem: path for stem, (_, path) in best.items()}


def locate_images(
    source: Path, reading: SourceReading, kept: Sequence[SourceRow], suffixes: Sequence[str]
) -> dict[str, Path]:
    """Find the image file of every kept row; a missing one is an error naming its row and counting others."""
    index = index_images(source, suffixes)
    missing = [row for row in kept if row.source_id not in index]
    if missing:
        first = missing[0]
        examples = ", ".join(str(row.line) for row in missing[1:6])
        others = f"; {len(missing) - 1} more row(s) lack images, e.g. rows {examples}"
        raise _row_error(
            reading.metadata_path,
            first.line,
            reading.fmt.id_column,
            f"no image file {first.source_id}{{{','.join(suffixes)}}} anywhere under {source}"
            + (others if len(missing) > 1 else ""),
        )
    return {row.source_id: index[row.source_id] for row in kept}


def decode_square(path: str | Path, settings: DecodeSettings) -> np.ndarray:
    """Decode an image to a ``size``-square RGB uint8 array: EXIF-rotated, centre-cropped, resized."""
    with Image.open(path) as image:
        if settings.use_draft:
            image.draft("RGB", (settings.size, settings.size))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        ImageOps.exif_transpose(image, in_place=True)
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.resize((settings.size, settings.size), settings.resample, box=(left, top, left + side, top + side))
    return np.asarray(square, dtype=np.uint8)


def cache_file(cache_dir: Path, image_path: Path, settings: DecodeSettings) -> Path:
    """Cache entry of one decoded image, keyed by its path, mtime, file size and the decode settings."""
    stat = image_path.stat()
    key_text = "|".join(
        str(part)
        for part in (
            image_path.absolute(),
            stat.st_mtime_ns,
            stat.st_size,
            settings.size,
            settings.use_draft,
            int(settings.resample),
            settings.version,
        )
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()
    return cache_dir / key[:2] / f"{key}.npy"


def load_cached(path: Path, size: int) -> np.ndarray | None:
    """A cached decoded image, or None when absent, unreadable or of the wrong shape."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return array if array.shape == (size, size, 3) and array.dtype == np.uint8 else None


def store_cached(path: Path, array: np.ndarray) -> None:
    """Write a cache entry atomically; a failure only costs a re-decode later, so it is ignored."""
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def decode_batch(settings: DecodeSettings, jobs: Sequence[tuple[str, str]]) -> BatchResult:
    """Decode (image, cache) path pairs into one array, caching each; failures are returned, not raised."""
    batch = np.zeros((len(jobs), settings.size, settings.size, 3), dtype=np.uint8)
    failures: list[tuple[int, str]] = []
    for index, (image_path, cache_path) in enumerate(jobs):
        try:
            batch[index] = decode_square(image_path, settings)
        except Exception as error:  # any decoder failure becomes a named-row error in the parent
            failures.append((index, f"{type(error).__name__}: {error}"))
            continue
        if cache_path:
            store_cached(Path(cache_path), batch[index])
    return batch, failures


class ProgressCounter:
    """'done/total' and a rate on stderr, redrawn at most every ``interval`` seconds; silent if disabled."""

    def __init__(self, total: int, label: str, enabled: bool, interval: float) -> None:
        self.total, self.label, self.enabled, self.interval = total, label, enabled, interval
        self.done = 0
        self.started = self.shown = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        if self.enabled and time.monotonic() - self.shown >= self.interval:
            self._show("\r")

    def close(self) -> None:
        if self.enabled:
            self._show("\r")
            sys.stderr.write("\n")

    def _show(self, prefix: str) -> None:
        self.shown = time.monotonic()
        rate = self.done / max(self.shown - self.started, 1e-9)
        sys.stderr.write(f"{prefix}{self.label}: {self.done}/{self.total} images ({rate:.0f}/s)")
        sys.stderr.flush()


@dataclass(frozen=True)
class DecodeJob:
    """One image to decode and the array row it lands in."""

    split: str
    row: int
    image_path: Path
    cache_path: Path
    line: int  # metadata row, for error messages


@dataclass(frozen=True)
class DecodeStats:
    """How many images were decoded now and how many came from the cache."""

    decoded: int
    cache_hits: int


def fill_arrays(
    images: Sequence[PlannedImage],
    staging: DatasetPaths,
    cache_dir: Path,
    options: ImportOptions,
    metadata_path: Path,
) -> DecodeStats:
    """Write every planned image into its split's memory-mapped array, from the cache or by decoding."""
    settings = DecodeSettings(options.size)
    rows_of: dict[str, list[PlannedImage]] = {split: [i for i in images if i.split == split] for split in SPLITS}
    arrays = {
        split: open_image_array(staging.images(split), len(rows), options.size) for split, rows in rows_of.items()
    }
    jobs = [
        DecodeJob(split, row, image.path, cache_file(cache_dir, image.path, settings), image.row.line)
        for split, rows in rows_of.items()
        for row, image in enumerate(rows)
    ]
    progress = ProgressCounter(len(jobs), "import", options.progress, options.limits.progress_interval_s)
    fresh = _copy_cached(jobs, arrays, options.size, progress)
    _decode_fresh(fresh, arrays, settings, options, progress, metadata_path)
    progress.close()
    for array in arrays.values():
        array.flush()
    return DecodeStats(decoded=len(fresh), cache_hits=len(jobs) - len(fresh))


def _copy_cached(
    jobs: Sequence[DecodeJob], arrays: dict[str, np.ndarray], size: int, progress: ProgressCounter
) -> list[DecodeJob]:
    """Fill rows whose decoded image is cached; return the jobs that still need decoding."""
    fresh = []
    for job in jobs:
        cached = load_cached(job.cache_path, size) if job.cache_path.is_file() else None
        if cached is None:
            fresh.append(job)
            continue
        arrays[job.split][job.row] = cached
        progress.advance(1)
    return fresh


def _decode_fresh(
    jobs: Sequence[DecodeJob],
    arrays: dict[str, np.ndarray],
    settings: DecodeSettings,
    options: ImportOptions,
    progress: ProgressCounter,
    metadata_path: Path,
) -> None:
    """Decode uncached images in batches (in parallel when worthwhile) and write each into place."""
    size = options.limits.batch_size
    batches = [jobs[start : start + size] for start in range(0, len(jobs), size)]

    def write(index: int, result: BatchResult) -> None:
        decoded, failures = result
        if failures:
            position, message = failures[0]
            job = batches[index][position]
            raise ImportFormatError(f"{metadata_path}: row {job.line}: cannot decode {job.image_path} ({message})")
        for job, array in zip(batches[index], decoded, strict=True):
            arrays[job.split][job.row] = array
        progress.advance(len(decoded))

    payloads = [[(str(job.image_path), str(job.cache_path)) for job in batch] for batch in batches]
    run_batches(payloads, settings, options.workers, options.limits.batches_in_flight_per_worker, write)


def run_batches(
    payloads: Sequence[Sequence[tuple[str, str]]],
    settings: DecodeSettings,
    workers: int,
    in_flight_per_worker: int,
    consume: Callable[[int, BatchResult], None],
) -> None:
    """Decode batches in a spawn-based process pool with at most workers x in_flight batches outstanding."""
    workers = min(workers, len(payloads))
    if workers <= 1:
        for index, payload in enumerate(payloads):
            consume(index, decode_batch(settings, payload))
        return
    # spawn, not fork: the caller may be a threaded server, and forking a threaded process can deadlock
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        _stream_through_pool(pool, payloads, settings, workers * in_flight_per_worker, consume)
    except BrokenProcessPool as error:
        raise DatasetError(
            "a decode worker died: killed for memory, or the calling script cannot be re-imported by "
            "multiprocessing's spawn (guard it with `if __name__ == '__main__':`), or pass workers=1"
        ) from error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stream_through_pool(
    pool: ProcessPoolExecutor,
    payloads: Sequence[Sequence[tuple[str, str]]],
    settings: DecodeSettings,
    window: int,
    consume: Callable[[int, BatchResult], None],
) -> None:
    """Keep ``window`` batches in flight and hand each result to ``consume`` as it arrives."""
    pending: dict[Future, int] = {}
    upcoming = iter(enumerate(payloads))
    while True:
        for index, payload in upcoming:
            pending[pool.submit(decode_batch, settings, payload)] = index
            if len(pending) >= window:
                break
        if not pending:
            return
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            consume(pending.pop(future), future.result())


# --------------------------------------------------------------------------------------------- output


def write_indexes(images: Sequence[PlannedImage], staging: DatasetPaths) -> None:
    """Write public split indexes (test without labels) and the private labels, id map and attribution."""
    for split in SPLITS:
        rows = [image for image in images if image.split == split]
        if split == "test":
            write_csv(staging.index(split), ("image_id",), ((image.image_id,) for image in rows))
        else:
            write_csv(
                staging.index(split),
                ("image_id", "label"),
                ((image.image_id, image.row.label) for image in rows),
            )
    tests = [image for image in images if image.split == "test"]
    write_csv(
        staging.test_labels,
        ("image_id", "label", "partition"),
        ((i.image_id, i.row.label, i.partition) for i in tests),
    )
    write_csv(staging.id_map, ("image_id", "source_id"), ((image.image_id, image.row.source_id) for image in images))
    write_csv(
        staging.private / "attribution.csv",
        ("image_id", "source_id", "copyright_license", "attribution"),
        ((image.image_id, image.row.source_id, image.row.licence, image.row.attribution) for image in images),
    )


def count_classes(images: Iterable[PlannedImage]) -> dict[str, int]:
    labels = Counter(image.row.label for image in images)
    return {name: labels[index] for index, name in enumerate(CLASS_NAMES)}


def build_manifest(
    paths: DatasetPaths,
    source: Path,
    reading: SourceReading,
    selection: Selection,
    images: Sequence[PlannedImage],
    options: ImportOptions,
    stats: DecodeStats,
    seconds: float,
) -> dict:
    """The manifest: provenance, options, filters, per-split class counts, licences and this run's work."""
    by_split = {split: [image for image in images if image.split == split] for split in SPLITS}
    counts = {split: count_classes(rows) for split, rows in by_split.items()}
    for partition in ("public", "private"):
        counts[f"test_{partition}"] = count_classes(image for image in by_split["test"] if image.partition == partition)
    return {
        "name": paths.name,
        "source": str(source),
        "format": reading.fmt.name,
        "metadata_file": reading.metadata_path.name,
        "filters": {
            "dermoscopic_only": options.dermoscopic_only,
            "dropped": selection.dropped,
            "duplicate_pairs": len(reading.duplicate_pairs),
            "missing_images": "error",
        },
        "seed": options.seed,
        "size": options.size,
        "fractions": list(options.fractions),
        "public_fraction": options.public_fraction,
        "counts": counts,
        "groups": {split: len({image.group for image in rows}) for split, rows in by_split.items()},
        "class_names": list(CLASS_NAMES),
        "licence_counts": dict(sorted(Counter(image.row.licence or "unknown" for image in images).items())),
        "importer_version": IMPORTER_VERSION,
        "import_stats": {
            "decoded": stats.decoded,
            "cache_hits": stats.cache_hits,
            "seconds": round(seconds, 2),
        },
    }


def _fresh_staging(paths: DatasetPaths) -> DatasetPaths:
    """An empty build folder beside the data set, under a hidden .importing that list_datasets ignores."""
    staging = paths.root.parent / ".importing" / paths.name
    if staging.exists():
        shutil.rmtree(staging)  # left over by a crashed import of the same name
    staging.mkdir(parents=True)
    return DatasetPaths(staging)


def _move_into_place(staging: DatasetPaths, paths: DatasetPaths) -> None:
    """Swap the finished build in with two renames, carrying the decode cache along."""
    cache = paths.root / ".cache"
    if cache.is_dir():
        cache.rename(staging.root / ".cache")
    retired = staging.root.parent / f"{paths.name}.replaced"
    if retired.exists():
        shutil.rmtree(retired)
    if paths.root.exists():
        paths.root.rename(retired)
    staging.root.rename(paths.root)
    shutil.rmtree(retired, ignore_errors=True)
    _remove_if_empty(staging.root.parent)


def _discard_staging(staging: DatasetPaths) -> None:
    """Remove a failed build, leaving any previous data set (and the decode cache) untouched."""
    shutil.rmtree(staging.root, ignore_errors=True)
    _remove_if_empty(staging.root.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: another import is building beside us


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def import_isic(
    source: Path,
    paths: DatasetPaths,
    *,
    fmt: str = "auto",
    size: int = 224,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    public_fraction: float = 0.5,
    dermoscopic_only: bool = False,
    workers: int | None = None,
    progress: bool = True,
    duplicates_csv: Path | None = None,
) -> dict:
    """Import an ISIC export into ``paths``: leak-free group splits, opaque ids; returns the manifest."""
    started = time.monotonic()
    options = ImportOptions(
        size=size,
        seed=seed,
        fractions=tuple(fractions),
        public_fraction=public_fraction,
        dermoscopic_only=dermoscopic_only,
        workers=available_cores() if workers is None else workers,
        progress=progress,
    )
    source = Path(source).resolve()
    name = detect_format(source) if fmt == "auto" else fmt
    if name not in FORMATS:
        raise ImportFormatError(f"unknown format {fmt!r}: choose auto, {', '.join(FORMATS)}")
    reading = read_source(source, FORMATS[name], Path(duplicates_csv) if duplicates_csv else None)
    selection = select_rows(reading, dermoscopic_only)
    image_files = locate_images(source, reading, selection.kept, options.limits.image_suffixes)
    images = plan_splits(selection, image_files, options)
    check_no_leakage(images)
    staging = _fresh_staging(paths)
    try:
        write_indexes(images, staging)
        stats = fill_arrays(images, staging, paths.root / ".cache", options, reading.metadata_path)
        manifest = build_manifest(paths, source, reading, selection, images, options, stats, time.monotonic() - started)
        write_manifest(staging, manifest)
        check_dataset(staging)
        _move_into_place(staging, paths)
    except BaseException:
        _discard_staging(staging)
        raise
    return manifest
