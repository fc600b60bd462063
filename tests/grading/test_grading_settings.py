"""One GradingSettings, built from the configuration in one place, for workers, `workshop grade` and the checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from paths import PROJECT_ROOT

from grader.grading import GradeResult, GradingSettings
from server.grading_settings import grading_settings

IMAGE = "registry.example/workshop:pinned"


@pytest.fixture
def docker_app(app):
    app.config.update(SANDBOX="docker", DOCKER_IMAGE=IMAGE)
    return app


@pytest.fixture
def graded_with(monkeypatch):
    """Replace grading by a recorder: the settings of every grading run, in order; every run scores 0.9."""
    import grader.curriculum
    import grader.grading

    seen: list[GradingSettings] = []

    def fake_grade(code, exercise, dataset, settings, **options):
        seen.append(settings)
        return GradeResult(status="done", public_score=0.9, private_score=0.9, seconds=1.0)

    monkeypatch.setattr(grader.grading, "grade", fake_grade)
    monkeypatch.setattr(grader.curriculum, "grade", fake_grade)
    return seen


def test_settings_come_from_the_configuration(app):
    settings = grading_settings(app)
    assert settings.sandbox == "bwrap" and dict(settings.sandbox_options) == {}
    assert settings.work_dir == Path(app.config["WORK_DIR"])
    assert settings.weights_dir == Path(app.config["KERAS_HOME"]) / "models"
    assert settings.jobs_dir == Path(app.config["WORK_DIR"]) / "workshop-jobs"


def test_the_docker_image_is_an_option_of_the_docker_backend_only(docker_app):
    assert dict(grading_settings(docker_app).sandbox_options) == {"image": IMAGE}
    assert dict(grading_settings(docker_app, "bwrap").sandbox_options) == {}
    docker_app.config["SANDBOX"] = "bwrap"
    assert dict(grading_settings(docker_app, "docker").sandbox_options) == {"image": IMAGE}


def test_settings_are_frozen():
    settings = GradingSettings(sandbox_options={"image": "a"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sandbox = "none"
    with pytest.raises(TypeError):
        settings.sandbox_options["image"] = "b"


def test_workshop_grade_uses_the_configured_docker_image(docker_app, graded_with, tmp_path):
    solution = PROJECT_ROOT / "exercises" / "cnn-from-scratch" / "solution.py"
    runner = docker_app.test_cli_runner()
    result = runner.invoke(args=["grade", str(solution), "--exercise", "cnn-from-scratch", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "done"
    assert graded_with == [grading_settings(docker_app)]
    assert graded_with[0].sandbox == "docker" and dict(graded_with[0].sandbox_options) == {"image": IMAGE}


def test_exercises_check_uses_the_configured_docker_image(docker_app, graded_with):
    runner = docker_app.test_cli_runner()
    result = runner.invoke(args=["exercises", "check", "cnn-from-scratch", "--starters", "--json"])
    assert result.exit_code == 0, result.output
    assert graded_with == [grading_settings(docker_app)] * 2  # the solution and the starter
    assert graded_with[0].sandbox == "docker" and dict(graded_with[0].sandbox_options) == {"image": IMAGE}


def test_sandbox_check_of_docker_uses_the_configured_image(app, monkeypatch):
    import server.executor_runtime

    seen = {}

    def fake_check(backend_name, *, uid, work_dir, options):
        seen.update(backend=backend_name, options=options, work_dir=work_dir)
        return []

    app.config["DOCKER_IMAGE"] = IMAGE
    monkeypatch.setattr(server.executor_runtime, "run_sandbox_check", fake_check)
    monkeypatch.setattr(server.executor_runtime, "format_table", lambda rows: "(no rows)")
    result = app.test_cli_runner().invoke(args=["sandbox", "check", "--backend", "docker"])
    assert result.exit_code == 0, result.output
    assert seen == {"backend": "docker", "options": {"image": IMAGE}, "work_dir": Path(app.config["WORK_DIR"])}
