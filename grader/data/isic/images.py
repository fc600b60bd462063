"""Finding each row's image file under the export, and decoding images to square uint8 arrays."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from grader.data.isic.cache import store_cached
from grader.data.isic.formats import row_error
from grader.data.isic.options import DecodeSettings
from grader.data.isic.sources import SourceReading, SourceRow

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
        raise row_error(
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
