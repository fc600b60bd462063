"""A data set's checksum for the run record: SHA-256 over its manifest and every public file (what a job sees).

Computed once per file version (path, size, modification time) and kept in memory, so the first job after a
start pays for reading the files and later jobs for a few ``stat`` calls. The private files (hidden labels,
the id map) are left out: a checksum shown to participants must say nothing about them.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from grader.data.layout import DatasetError, DatasetPaths

CHUNK = 1 << 20
_cache: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: Path) -> str:
    """The SHA-256 of one file, remembered while its size and modification time stay the same."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    with _lock:
        _cache[key] = digest.hexdigest()
    return _cache[key]


def dataset_checksum(paths: DatasetPaths) -> str:
    """SHA-256 of the list ``name size sha256`` of manifest.json and the public files, sorted by name."""
    if not paths.manifest.is_file() or not paths.public.is_dir():
        raise DatasetError(f"data set {paths.name!r} not found (no {paths.manifest})")
    files = [paths.manifest, *sorted(path for path in paths.public.iterdir() if path.is_file())]
    listing = "".join(
        f"{path.relative_to(paths.root).as_posix()} {path.stat().st_size} {file_sha256(path)}\n" for path in files
    )
    return hashlib.sha256(listing.encode()).hexdigest()
