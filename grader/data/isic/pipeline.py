"""Filling the split arrays: cached images are copied, the rest decoded in a bounded process pool."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.data.isic.cache import cache_file, load_cached
from grader.data.isic.formats import ImportFormatError
from grader.data.isic.images import BatchResult, decode_batch
from grader.data.isic.options import DecodeSettings, ImportOptions
from grader.data.isic.splits import PlannedImage
from grader.data.layout import SPLITS, DatasetError, DatasetPaths, open_image_array


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


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
