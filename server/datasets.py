"""The event's active data set: which one new submissions are graded on, read and changed in one place."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from grader.data import check_dataset, dataset_paths
from server.db import new_session
from server.errors import WorkshopError
from server.models import EventSettings

DEFAULT_DATASET = "synthetic"


def active_dataset(db) -> str:
    """The active data set's name; ``synthetic`` before ``workshop init`` has written the settings."""
    settings = db.get(EventSettings, 1)
    return settings.active_dataset if settings else DEFAULT_DATASET


def active_dataset_or_default(app) -> str:
    """The active data set, or ``synthetic`` where there is no database yet (grading and listing work without one)."""
    try:
        with new_session(app) as db:
            return active_dataset(db)
    except SQLAlchemyError:
        return DEFAULT_DATASET


def activate_dataset(db, data_dir: str | Path, name: str) -> None:
    """Make ``name`` the data set new submissions are graded on; raises DatasetError where it is not usable."""
    check_dataset(dataset_paths(data_dir, name))
    settings = db.get(EventSettings, 1)
    if settings is None:
        raise WorkshopError("the database is not initialised: run `workshop init` first")
    settings.active_dataset = name
    db.commit()
