"""How fast the ISIC importer decodes: JPEG draft mode vs full decode, and the whole import on all cores.

Run: ``.venv/bin/python bench/import_speed.py [--count 300] [--repeats 3] [--import-copies 4]``. Makes
lesion-like JPEGs in a temporary folder, times single-process decoding both ways on the same files, then a
full import of the files linked ``--import-copies`` times (cold and warm cache) and extrapolates to the
33,126 images of the ISIC 2020 training set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.data.isic import DecodeSettings, available_cores, import_isic  # noqa: E402
from grader.data.isic.images import decode_square  # noqa: E402
from grader.data.layout import dataset_paths, write_csv  # noqa: E402

ISIC_2020_TRAINING_IMAGES = 33_126


@dataclass(frozen=True)
class BenchOptions:
    """What to generate and how often to time it."""

    count: int = 300
    repeats: int = 3
    import_copies: int = 4
    size: int = 224
    shapes: tuple[tuple[int, int], ...] = ((1024, 768), (600, 450))
    quality: int = 90
    seed: int = 0


def lesion_picture(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A skin-toned field with a blurred irregular dark blob, a few hairs and sensor noise."""
    skin = np.array([205, 160, 135]) + rng.normal(0, 12, (4, 5, 3))
    base = Image.fromarray(np.clip(skin, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    blob = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(blob)
    centre = np.array([width, height]) / 2 + rng.normal(0, min(width, height) / 12, 2)
    for _ in range(6):
        radius = np.array([width, height]) * rng.uniform(0.12, 0.25, 2)
        offset = rng.normal(0, min(width, height) / 20, 2)
        draw.ellipse([*(centre + offset - radius), *(centre + offset + radius)], fill=int(rng.uniform(150, 255)))
    blob = blob.filter(ImageFilter.GaussianBlur(min(width, height) / 40))
    brown = Image.new("RGB", (width, height), tuple(int(v) for v in rng.uniform([70, 40, 25], [120, 75, 55])))
    picture = Image.composite(brown, base, blob)
    hairs = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(0, 6))):
        points = rng.uniform(0, 1, (3, 2)) * [width, height]
        hairs.line([tuple(point) for point in points], fill=(45, 30, 25), width=2)
    noisy = np.asarray(picture, dtype=np.int16) + rng.normal(0, 4, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_export(folder: Path, options: BenchOptions) -> list[Path]:
    """Write ``count`` JPEGs, link each ``import_copies`` times, and an isic-cli metadata.csv of all links.

    Returns the distinct pictures; the links give the whole-import run enough images to amortise the pool's
    start-up, and each is decoded anew since the cache is keyed by path.
    """
    rng = np.random.default_rng(options.seed)
    pictures = []
    for index in range(options.count):
        width, height = options.shapes[index % len(options.shapes)]
        pictures.append(folder / f"ISIC_{index:07d}.jpg")
        lesion_picture(width, height, rng).save(pictures[-1], quality=options.quality)
    rows = []
    for index in range(options.count * options.import_copies):
        path = folder / f"ISIC_{index:07d}.jpg"
        if not path.exists():
            os.link(pictures[index % options.count], path)
        label = "Malignant" if index % 5 == 0 else "Benign"
        rows.append((path.stem, label, f"IL_{index // 2}", f"IP_{index // 6}", "dermoscopic", "CC-BY", "bench"))
    header = (
        "isic_id",
        "diagnosis_1",
        "lesion_id",
        "patient_id",
        "image_type",
        "copyright_license",
        "attribution",
    )
    write_csv(folder / "metadata.csv", header, rows)
    return pictures


def decode_rate(paths: list[Path], settings: DecodeSettings, repeats: int) -> tuple[float, float]:
    """Best and median images per second of single-process decode + crop + resize over ``paths``."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in paths:
            decode_square(path, settings)
        rates.append(len(paths) / (time.perf_counter() - started))
    return max(rates), statistics.median(rates)


def import_rate(source: Path, data_dir: Path, size: int) -> tuple[float, dict]:
    """Images per second of one whole import on all cores (decode, cache, write, check)."""
    started = time.perf_counter()
    manifest = import_isic(source, dataset_paths(data_dir, "bench"), size=size, progress=False)
    images = sum(
        sum(counts.values()) for split, counts in manifest["counts"].items() if split in ("train", "val", "test")
    )
    return images / (time.perf_counter() - started), manifest


def print_decode_rates(paths: list[Path], options: BenchOptions) -> None:
    """Single-process draft vs full decode (+ centre crop + resize) on the same files."""
    draft = decode_rate(paths, DecodeSettings(options.size), options.repeats)
    full = decode_rate(paths, DecodeSettings(options.size, use_draft=False), options.repeats)
    print(f"single process, {options.repeats} repeats, images/s (best, median), to {options.size} px:")
    print(f"  draft decode + crop + resize: {draft[0]:7.1f} {draft[1]:7.1f}")
    print(f"  full decode + crop + resize:  {full[0]:7.1f} {full[1]:7.1f}")
    print(f"  draft / full: {draft[0] / full[0]:.2f}x (best), {draft[1] / full[1]:.2f}x (median)")


def print_import_rates(source: Path, data_dir: Path, options: BenchOptions) -> None:
    """Whole import on all cores, cold then warm cache, and the extrapolation to ISIC 2020."""
    cold, manifest = import_rate(source, data_dir, options.size)
    warm, again = import_rate(source, data_dir, options.size)
    print(f"whole import of {options.count * options.import_copies} images, {available_cores()} workers:")
    print(f"  cold cache: {cold:7.1f} images/s (decoded {manifest['import_stats']['decoded']})")
    print(f"  warm cache: {warm:7.1f} images/s (decoded {again['import_stats']['decoded']})")
    print(f"  estimate for the ISIC 2020 training set ({ISIC_2020_TRAINING_IMAGES:,} images):")
    for label, rate in (("cold", cold), ("warm", warm)):
        print(f"    {label} cache: ~{ISIC_2020_TRAINING_IMAGES / rate / 60:.1f} min")


def main() -> None:
    """Make the files, then print decode rates and whole-import throughput."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=BenchOptions.count)
    parser.add_argument("--repeats", type=int, default=BenchOptions.repeats)
    parser.add_argument("--import-copies", type=int, default=BenchOptions.import_copies)
    parser.add_argument("--shapes", default="1024x768,600x450", help="comma-separated WIDTHxHEIGHT list")
    arguments = parser.parse_args()
    shapes = tuple(tuple(int(side) for side in shape.split("x")) for shape in arguments.shapes.split(","))
    options = BenchOptions(arguments.count, arguments.repeats, arguments.import_copies, shapes=shapes)
    with tempfile.TemporaryDirectory(prefix="isic-bench-") as temporary:
        source, data_dir = Path(temporary) / "export", Path(temporary) / "data"
        source.mkdir()
        started = time.perf_counter()
        pictures = make_export(source, options)
        megabytes = sum(path.stat().st_size for path in pictures) / 1e6
        sizes = ", ".join(f"{width}x{height}" for width, height in options.shapes)
        seconds = time.perf_counter() - started
        print(f"made {len(pictures)} JPEGs ({sizes}; {megabytes:.1f} MB) in {seconds:.1f} s")
        print_decode_rates(pictures, options)
        print_import_rates(source, data_dir, options)


if __name__ == "__main__":
    main()
