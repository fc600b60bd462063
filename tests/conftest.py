"""Shared fixtures: a tiny synthetic data set, an app on a temporary instance, clients that join and log in."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD

from grader.datasets import dataset_paths
from grader.synth import generate_synthetic
from server import create_app
from server.db import new_session, upgrade_database
from server.models import EventSettings
from server.passwords import hash_password

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A small synthetic data set (stored at 32 px) shared by the whole session; never modified by tests."""
    root = tmp_path_factory.mktemp("data")
    generate_synthetic(dataset_paths(root, "synthetic"), seed=1, train=64, val=24, test=40, size=32)
    return root


@pytest.fixture
def app(tmp_path, data_dir):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
            "DATA_DIR": str(data_dir),
            "WORK_DIR": str(tmp_path / "jobs"),
            "KERAS_HOME": str(tmp_path / "keras"),
            "EXERCISES_DIR": str(PROJECT_ROOT / "exercises"),
            "SANDBOX": "bwrap",
        }
    )
    upgrade_database(app)
    with new_session(app) as db:
        db.add(
            EventSettings(
                id=1,
                title="Test workshop",
                event_password_hash=hash_password(EVENT_PASSWORD),
                instructor_password_hash=hash_password(INSTRUCTOR_PASSWORD),
                active_dataset="synthetic",
            )
        )
        db.commit()
    yield app
    executor = app.extensions.get("executor")
    if executor is not None:
        executor.stop()
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
