"""The workers' start in the app: refused where the sandbox does not isolate, loud where there is none."""

from __future__ import annotations

import pytest

from grader.sandbox import SandboxUnavailable
from server.executor_runtime import build_executor

pytestmark = [pytest.mark.sandbox]


def test_workers_refuse_to_start_where_isolation_is_missing(app):
    app.config.update(SANDBOX="docker", DOCKER_IMAGE="workshop-no-such-image:never")
    with pytest.raises(SandboxUnavailable, match="does not isolate jobs on this host"):
        build_executor(app, slots=1)


def test_workers_start_without_isolation_only_with_a_loud_warning(app, capfd):
    app.config["SANDBOX"] = "none"
    build_executor(app, slots=1)
    assert "WITHOUT ANY ISOLATION" in capfd.readouterr().err
