"""The `workshop` command line: init, exercises list, data, and grading without the web."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD
from paths import PROJECT_ROOT
from sqlalchemy import select

from server.db import new_session
from server.models import EventSettings
from server.passwords import check_password


def test_init_demo_uses_the_passwords_from_the_environment(app, runner, monkeypatch):
    monkeypatch.setenv("WORKSHOP_EVENT_PASSWORD", "room-42-password")
    monkeypatch.setenv("WORKSHOP_INSTRUCTOR_PASSWORD", "teacher-password")
    result = runner.invoke(args=["init", "--demo"])
    assert result.exit_code == 0, result.output
    assert "room-42-password" not in result.output and "set from WORKSHOP_EVENT_PASSWORD" in result.output
    with new_session(app) as db:
        settings = db.scalars(select(EventSettings)).one()
    assert check_password(settings.event_password_hash, "room-42-password")
    assert check_password(settings.instructor_password_hash, "teacher-password")


def test_init_demo_keeps_passwords_set_earlier(app, runner, monkeypatch):
    monkeypatch.delenv("WORKSHOP_EVENT_PASSWORD", raising=False)
    monkeypatch.delenv("WORKSHOP_INSTRUCTOR_PASSWORD", raising=False)
    result = runner.invoke(args=["init", "--demo"])  # the app fixture set both already
    assert result.exit_code == 0, result.output
    assert "password:" not in result.output and "workshop init --new-passwords" in result.output
    with new_session(app) as db:
        settings = db.get(EventSettings, 1)
    assert check_password(settings.event_password_hash, EVENT_PASSWORD)
    assert check_password(settings.instructor_password_hash, INSTRUCTOR_PASSWORD)


def test_init_new_passwords_generates_and_prints_them_once(app, runner, monkeypatch):
    monkeypatch.delenv("WORKSHOP_EVENT_PASSWORD", raising=False)
    monkeypatch.delenv("WORKSHOP_INSTRUCTOR_PASSWORD", raising=False)
    result = runner.invoke(args=["init", "--demo", "--new-passwords"])
    assert result.exit_code == 0, result.output
    event = re.search(r"event password: (\S+)", result.output).group(1)
    instructor = re.search(r"instructor password: (\S+)", result.output).group(1)
    assert event != instructor and len(event) >= 10
    with new_session(app) as db:
        settings = db.get(EventSettings, 1)
    assert check_password(settings.event_password_hash, event)
    # a plain re-run (no --demo) keeps the passwords and prints none
    again = runner.invoke(args=["init"])
    assert again.exit_code == 0 and "password:" not in again.output


def test_init_upgrades_an_empty_database(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("WORKSHOP_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "init"], capture_output=True, text=True, cwd=PROJECT_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Database ready" in result.stdout and "event password:" in result.stdout


def test_exercises_list_json(app, runner):
    from server.catalog import catalog

    result = runner.invoke(args=["exercises", "list", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert [item["slug"] for item in listing] == list(catalog(app))
    first = catalog(app)["cnn-from-scratch"]
    expected = first.as_listing()
    assert expected in listing
    assert all(set(item) == {"slug", "title", "image_size", "time_limit"} for item in listing)


def test_data_info_lists_and_describes(runner):
    listing = runner.invoke(args=["data", "info"])
    assert listing.exit_code == 0, listing.output
    # the conftest set: 64 train, 24 val, 40 test images at 32 px, 30 % malignant, active
    row = r"^synthetic\s+synthetic\s+32\s+64 \( ?\d+%\)\s+24 \( ?\d+%\)\s+40 \( ?\d+%\)\s+yes$"
    assert re.search(row, listing.output, re.M), listing.output
    described = runner.invoke(args=["data", "info", "synthetic"])
    assert described.exit_code == 0 and json.loads(described.output)["source"] == "synthetic"
    missing = runner.invoke(args=["data", "info", "nope"])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_data_synth_refuses_bad_sizes_and_does_not_overwrite(runner, app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path)
    bad = runner.invoke(args=["data", "synth", "--size", "4"])
    assert bad.exit_code != 0 and "size" in bad.output
    made = runner.invoke(args=["data", "synth", "--train", "8", "--val", "4", "--test", "8", "--size", "16"])
    assert made.exit_code == 0, made.output
    again = runner.invoke(args=["data", "synth"])
    assert "already exists" in again.output


@pytest.mark.slow
@pytest.mark.sandbox
def test_grade_json_runs_a_file_like_a_worker(runner, tmp_path):
    solution = PROJECT_ROOT / "exercises" / "cnn-from-scratch" / "solution.py"
    result = runner.invoke(args=["grade", str(solution), "--exercise", "cnn-from-scratch", "--json"])
    assert result.exit_code == 0, result.output
    graded = json.loads(result.output)
    assert graded["status"] == "done" and graded["error_kind"] is None
    assert 0 <= graded["public_score"] <= 1 and 0 <= graded["private_score"] <= 1
    assert graded["metrics"]["public"]["count"] > 0 and graded["seconds"] > 0
    assert "Epoch 1/" in graded["log"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_grade_json_reports_failures_with_a_kind(runner, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n\ndef train(data):\n    return None\n")
    result = runner.invoke(args=["grade", str(broken), "--exercise", "cnn-from-scratch", "--json"])
    assert result.exit_code == 0, result.output
    graded = json.loads(result.output)
    assert graded["status"] == "failed" and graded["error_kind"] == "import_error"
    assert "not_a_module_anywhere" in graded["message"]
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def train(:\n")
    graded = json.loads(runner.invoke(args=["grade", str(syntax), "--exercise", "cnn-from-scratch", "--json"]).output)
    assert graded["error_kind"] == "syntax_error"


def test_grade_names_unknown_exercises(runner, tmp_path):
    file = tmp_path / "x.py"
    file.write_text("def train(data): ...\n")
    result = runner.invoke(args=["grade", str(file), "--exercise", "nope"])
    assert result.exit_code != 0 and "unknown exercise 'nope'" in result.output


def test_export_writes_participants_submissions_code_and_leaderboards(app, runner, tmp_path):
    from factories import join, make_participant, make_submission

    from grader.grading import GradeResult
    from server.job_store import DatabaseJobStore

    join(app.test_client(), "Bob")
    make_submission(app, make_participant(app, "Ada"), code="def train(data):\n    pass\n")
    store = DatabaseJobStore(app)
    job = store.claim_next_job("w", 60)
    store.record_result(job, GradeResult(status="done", public_score=0.8, private_score=0.7))
    out = tmp_path / "export"
    result = runner.invoke(args=["export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 participants and 1 submissions" in result.output
    assert (out / "code" / f"{job.submission_id}.py").read_text().startswith("def train")
    board = (out / "leaderboard-cnn-from-scratch.csv").read_text().splitlines()
    assert board[0].startswith("rank,display_name,public_score,private_score") and board[1].startswith("1,Ada,0.8,0.7")
    assert "Ada" in (out / "submissions.csv").read_text()


@pytest.mark.slow  # about 10 s: the worker restarts its slots a few times before giving up
def test_worker_exits_non_zero_when_it_cannot_keep_any_slot_alive(app, tmp_path):
    """Every slot dies at start (its lock folder is writable by anyone, so it refuses to use it): the worker
    gives up after a few restarts and exits non-zero, so that systemd or compose restart it."""
    unsafe = tmp_path / "locks"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    env = {
        **os.environ,
        "WORKSHOP_DATABASE_URL": app.config["DATABASE_URL"],
        "WORKSHOP_INSTANCE_PATH": str(tmp_path),
        "WORKSHOP_SANDBOX": "none",
        "WORKSHOP_SLOT_LOCK_DIR": str(unsafe),
    }
    try:
        worker = subprocess.run(
            [sys.executable, "-m", "server.cli", "worker", "--slots", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the worker kept running without a single live slot")
    assert worker.returncode != 0
    assert "no worker slot can be kept alive" in worker.stderr and "lock" in worker.stderr.lower()


def test_init_never_prints_the_database_password():
    """`workshop init` runs in the compose file's entrypoint: its output ends up in logs."""
    from server.cli.init import safe_url

    assert (
        safe_url("postgresql+psycopg://work:s3cret@db:5432/workshop")
        == "postgresql+psycopg://work:***@db:5432/workshop"
    )
    assert "s3cret" not in safe_url("not a url://work:s3cret@db")
    assert safe_url("sqlite:////srv/workshop/db/workshop.db") == "sqlite:////srv/workshop/db/workshop.db"
