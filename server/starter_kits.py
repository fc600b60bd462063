"""Starter kits, built once per exercise and data set version and kept by the app: the download on the
exercise page and the takeaway bundles share one cache, so a room downloading at once costs one build."""

from __future__ import annotations

import threading

from flask import Flask

from grader.data import DatasetPaths
from grader.exercises import Exercise

_lock = threading.Lock()


def cached_starter_kit(app: Flask, exercise: Exercise, dataset: DatasetPaths) -> bytes:
    """The kit of ``exercise`` on ``dataset``; raises OSError when the data set is not on this server."""
    from grader.starter_kit import build_starter_kit

    key = (exercise.slug, dataset.name, dataset.manifest.stat().st_mtime_ns)
    cache = app.extensions.setdefault("starter_kits", {})
    with _lock:
        if key not in cache:
            cache[key] = build_starter_kit(exercise, dataset)
        return cache[key]
