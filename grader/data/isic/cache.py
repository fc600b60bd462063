"""The decode cache under ``<data set>/.cache``: one .npy per decoded image, keyed by file and decode settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from grader.data.isic.options import DecodeSettings


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
