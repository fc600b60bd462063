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

import time
from pathlib import Path

from grader.data.isic.formats import FORMATS, ImportFormatError, detect_format
from grader.data.isic.images import locate_images
from grader.data.isic.options import DecodeSettings, ImportOptions
from grader.data.isic.pipeline import available_cores, fill_arrays
from grader.data.isic.selection import select_rows
from grader.data.isic.sources import read_source
from grader.data.isic.splits import check_no_leakage, plan_splits
from grader.data.isic.write import build_manifest, discard_staging, fresh_staging, move_into_place, write_indexes
from grader.data.layout import DatasetPaths, check_dataset, write_manifest

__all__ = ["FORMATS", "DecodeSettings", "ImportFormatError", "available_cores", "detect_format", "import_isic"]


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
    staging = fresh_staging(paths)
    try:
        write_indexes(images, staging)
        stats = fill_arrays(images, staging, paths.root / ".cache", options, reading.metadata_path)
        manifest = build_manifest(paths, source, reading, selection, images, options, stats, time.monotonic() - started)
        write_manifest(staging, manifest)
        check_dataset(staging)
        move_into_place(staging, paths)
    except BaseException:
        discard_staging(staging)
        raise
    return manifest
