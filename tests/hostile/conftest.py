"""Fixtures of the hostile suite: run a submission through the real bwrap sandbox while the web app is polled.

Every run also asserts two facts that must hold whatever the submission did: the web app kept answering
while the job ran, and no process of the job's uid is left on the host afterwards.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from grader.data import dataset_paths
from grader.grading import GradingSettings, grade
from grader.sandbox import SlotLock, processes_of_uid
from grader.sandbox.check import Listeners
from server.catalog import catalog

from .common import PRELUDE, SLUG, UID, HostileRun, WebPoller, facts_from


@pytest.fixture
def exercise(app):
    return catalog(app)[SLUG]


@pytest.fixture
def run_hostile(app, data_dir, tmp_path, exercise):
    """Grade hostile ``code`` (PRELUDE prepended) through bwrap; returns the verdict and the facts it reported."""

    def run(code: str, *, params: dict | None = None, time_limit: float = 5, memory_mb: int | None = None):
        chosen = dataclasses.replace(exercise, memory_limit_mb=memory_mb) if memory_mb else exercise
        source = PRELUDE.format(params=json.dumps(params or {})) + code
        with WebPoller(app) as poller:
            result = grade(
                source,
                chosen,
                dataset_paths(data_dir, "synthetic"),
                GradingSettings(sandbox="bwrap", work_dir=tmp_path),
                time_limit=time_limit,
                uid=UID,
            )
        assert poller.answers and set(poller.answers) == {200}, poller.answers
        with SlotLock(uid=UID):  # (a concurrent run of this suite elsewhere would hold the uid)
            assert processes_of_uid(UID) == [], "a process of the job outlived it"
        return HostileRun(result, facts_from(result.log), poller.answers)

    return run


@pytest.fixture
def listeners():
    """TCP on 127.0.0.1 and ::1, UDP on 127.0.0.1 and an abstract unix socket, all on the host."""
    opened = Listeners()
    yield opened
    opened.close()


@pytest.fixture
def private_dir(data_dir):
    return dataset_paths(data_dir, "synthetic").private
