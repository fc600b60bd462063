"""Shared fixtures: a tiny synthetic data set, an app on a temporary instance, clients that join and log in."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD
from host_needs import fail_if_host_lacks, guard_unmarked, slow_unmarked
from paths import PROJECT_ROOT

from grader.data import dataset_paths
from grader.data.synth import generate_synthetic
from server import create_app
from server.db import new_session, upgrade_database
from server.models import EventSettings
from server.passwords import hash_password

pytest_plugins = ["pytester", "browser_kit"]  # browser_kit: live_server, live_env and page for the browser tests

# `WORKSHOP_DATABASE_URL=postgresql+psycopg://127.0.0.1:5432/test pytest ...` (make test-postgres): the `app`
# fixture gets a fresh database of its own on that server, created and dropped around each test. The variable
# leaves the environment here, so that no server or command a test starts shares that one database.
POSTGRES_SERVER = os.environ.get("WORKSHOP_DATABASE_URL", "")
if POSTGRES_SERVER.startswith("postgresql"):
    del os.environ["WORKSHOP_DATABASE_URL"]
else:
    POSTGRES_SERVER = ""


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A small synthetic data set (stored at 32 px) shared by the whole session; never modified by tests."""
    root = tmp_path_factory.mktemp("data")
    generate_synthetic(dataset_paths(root, "synthetic"), seed=1, train=64, val=24, test=40, size=32)
    return root


@pytest.fixture
def postgres_url():
    """A fresh database on the real PostgreSQL (127.0.0.1:5432, trust auth, or WORKSHOP_DATABASE_URL's server),
    dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(POSTGRES_SERVER or "postgresql+psycopg://127.0.0.1:5432/test")
    maintenance = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"workshop_test_{secrets.token_hex(6)}"
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app_database_url(request, tmp_path) -> str:
    """The `app` fixture's database: SQLite in the test's folder, or its own PostgreSQL database (see above)."""
    if POSTGRES_SERVER:
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each test using this runs twice: on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(tmp_path, data_dir, app_database_url):
    yield from make_app(tmp_path, data_dir, app_database_url)


@pytest.fixture
def any_db_app(tmp_path, data_dir, database_url):
    """The app on SQLite, then on PostgreSQL."""
    yield from make_app(tmp_path, data_dir, database_url)


def make_app(tmp_path, data_dir, database_url: str):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": database_url,
            "DATA_DIR": str(data_dir),
            "WORK_DIR": str(tmp_path / "jobs"),
            "KERAS_HOME": str(tmp_path / "keras"),
            "EXERCISES_DIR": str(PROJECT_ROOT / "exercises"),
            "SANDBOX": "bwrap",
            # a projector stream sends one snapshot and ends, so that walkers reading whole bodies return
            "PROJECTOR_STREAM_SECONDS": 0,
            "PROJECTOR_CACHE_SECONDS": 0,
            # a submission's live stream sends one round of events and ends, for the same reason
            "SUBMISSION_STREAM_SECONDS": 0,
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


def pytest_runtest_setup(item):
    """A test marked ``sandbox`` or ``browser`` fails at once on a host that cannot run it (never skips)."""
    fail_if_host_lacks(item)


@pytest.fixture(autouse=True)
def _markers_stay_true(request, monkeypatch):
    """A test that runs the sandbox or Chromium without its marker fails, naming the marker to add."""
    guard_unmarked(request.node, monkeypatch)


def pytest_terminal_summary(terminalreporter):
    """List the unmarked tests that took long, so that ``-m "not slow"`` stays a run of a few minutes."""
    lines = slow_unmarked(terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []))
    if lines:
        terminalreporter.section("tests that should be marked slow")
        for line in lines:
            terminalreporter.write_line(line)
