"""The kept predictions of graded jobs (WORK_DIR/predictions/<id>.csv) outside grading: who may read them, and
removing them with their submissions so that a later submission reusing an id never inherits them.

Under a root ``workshop serve`` the worker slots (root) write them and the web workers (the web user) rescore
from them: the folder is ``root:<web group> 2750`` (``server/serving/permissions.py`` sets it, new files keep
the group) and each file is made ``0640`` once written, so the web group reads them and nobody else does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from flask import Flask

KEPT_MODE = 0o640


def predictions_path(app: Flask, submission_id: int) -> Path:
    """Where a graded job's validated predictions are kept: WORK_DIR/predictions/<id>.csv."""
    return Path(app.config["WORK_DIR"]) / "predictions" / f"{int(submission_id)}.csv"


def kept_folder(app: Flask) -> Path:
    return Path(app.config["WORK_DIR"]) / "predictions"


def share_with_web_group(path: Path) -> None:
    """A freshly written kept file: readable by its group (the web user's, inherited from the folder)."""
    try:
        os.chmod(path, KEPT_MODE)
    except FileNotFoundError:
        pass


def forget(app: Flask, submission_ids: Iterable[int]) -> int:
    """Remove the kept predictions of these submissions; returns how many files there were."""
    removed = 0
    for submission_id in submission_ids:
        try:
            predictions_path(app, submission_id).unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def forget_all(app: Flask) -> int:
    """Remove every kept predictions file (and a half-written one); returns how many there were."""
    folder = kept_folder(app)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if path.suffix == ".csv" and path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    return removed
