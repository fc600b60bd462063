"""Writing the data set: index CSVs, the manifest, and the staging folder that is renamed into place at the end."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from grader.data.isic.options import ImportOptions
from grader.data.isic.pipeline import DecodeStats
from grader.data.isic.selection import Selection
from grader.data.isic.sources import SourceReading
from grader.data.isic.splits import PlannedImage
from grader.data.layout import CLASS_NAMES, SPLITS, DatasetPaths, count_classes, write_csv

IMPORTER_VERSION = "1.0"


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
    counts = {split: count_classes(image.row.label for image in rows) for split, rows in by_split.items()}
    for partition in ("public", "private"):
        in_partition = (image.row.label for image in by_split["test"] if image.partition == partition)
        counts[f"test_{partition}"] = count_classes(in_partition)
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


def fresh_staging(paths: DatasetPaths) -> DatasetPaths:
    """An empty build folder beside the data set, under a hidden .importing that list_datasets ignores."""
    staging = paths.root.parent / ".importing" / paths.name
    if staging.exists():
        shutil.rmtree(staging)  # left over by a crashed import of the same name
    staging.mkdir(parents=True)
    return DatasetPaths(staging)


def move_into_place(staging: DatasetPaths, paths: DatasetPaths) -> None:
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


def discard_staging(staging: DatasetPaths) -> None:
    """Remove a failed build, leaving any previous data set (and the decode cache) untouched."""
    shutil.rmtree(staging.root, ignore_errors=True)
    _remove_if_empty(staging.root.parent)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: another import is building beside us
