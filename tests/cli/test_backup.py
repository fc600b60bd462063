"""`workshop backup`, `restore` and `reset` on SQLite and on PostgreSQL: consistent copies while the app is in
use, identical boards after a restore, refusals with clear messages, and a reset that keeps the event's setup."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from datetime import timedelta

import pytest
from factories import EVENT_PASSWORD, instructor_login, make_participant, make_submission
from sqlalchemy import func, select

from server.backup import LAST_BACKUP, read_backup
from server.db import new_session
from server.job_store import predictions_path
from server.models import EventSettings, ExerciseControl, LoginThrottle, Participant, Submission, utcnow
from server.passwords import check_password

SLUGS = ("cnn-from-scratch", "fine-tuning")


@pytest.fixture
def event_app(any_db_app, tmp_path):
    """The app (SQLite, then PostgreSQL) with its own instance folder and a scored event."""
    any_db_app.instance_path = str(tmp_path / "instance")
    for number in range(6):
        participant = make_participant(any_db_app, f"Person {number}")
        for slug in SLUGS:
            for attempt in range(2):
                score = 0.5 + number / 20 + attempt / 100
                make_submission(any_db_app, participant, slug, status="done", public_score=score, private_score=score)
    return any_db_app


def boards(app) -> dict:
    client = app.test_client()
    instructor_login(client)
    return {slug: client.get(f"/leaderboard/{slug}.json").get_json() for slug in SLUGS}


def count(app, model) -> int:
    with new_session(app) as db:
        return db.scalar(select(func.count()).select_from(model))


def invoke(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_backup_while_in_use_then_restore_gives_identical_boards(event_app, tmp_path):
    before = boards(event_app)
    participant = make_participant(event_app, "Busy Writer")
    stop = threading.Event()

    def keep_submitting():  # the app in use: submissions arrive while the backup runs
        while not stop.is_set():
            make_submission(event_app, participant, "cnn-from-scratch")

    writer = threading.Thread(target=keep_submitting)
    writer.start()
    try:
        result = invoke(event_app, "backup", str(tmp_path / "event.tar.gz"))
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    archive, manifest = read_backup(tmp_path / "event.tar.gz")
    archive.close()
    assert manifest["participants"] == 7 and manifest["submissions"] >= 24
    assert manifest["database"] in ("sqlite", "postgresql") and manifest["alembic_revision"]
    assert manifest["active_dataset"] == "synthetic" and (tmp_path / "instance" / LAST_BACKUP).exists()
    assert (tmp_path / "event.tar.gz").stat().st_mode & 0o077 == 0

    with new_session(event_app) as db:  # the event goes on, then goes wrong
        db.execute(Submission.__table__.delete())
        db.commit()
    assert boards(event_app) != before
    result = invoke(event_app, "restore", str(tmp_path / "event.tar.gz"), "--yes")
    assert result.exit_code == 0, result.output
    assert count(event_app, Submission) == manifest["submissions"]  # the copy was consistent
    after = boards(event_app)
    assert after == before and after["cnn-from-scratch"]["rows"]
    assert (tmp_path / "instance" / "secret_key").read_text() == "test-secret-key"


def test_restore_refuses_without_yes(event_app, tmp_path):
    assert invoke(event_app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    make_participant(event_app, "Late Comer")
    result = invoke(event_app, "restore", str(tmp_path / "event.tar.gz"))
    assert result.exit_code != 0 and "--yes" in result.output
    assert count(event_app, Participant) == 7


def test_restore_refuses_a_file_that_is_not_a_backup(event_app, tmp_path):
    plain = tmp_path / "notes.tar.gz"
    plain.write_text("just some text")
    result = invoke(event_app, "restore", str(plain), "--yes")
    assert result.exit_code != 0 and "is not a workshop backup" in result.output
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as archive:
        body = b"{}"
        info = tarfile.TarInfo("../manifest.json")
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    result = invoke(event_app, "restore", str(other), "--yes")
    assert result.exit_code != 0 and "unexpected entries: ../manifest.json" in result.output
    assert count(event_app, Participant) == 6


def _rewrite_manifest(source, target, **changes):
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            body = old.extractfile(member).read()
            if member.name == "manifest.json":
                body = json.dumps({**json.loads(body), **changes}).encode()
                member.size = len(body)
            new.addfile(member, io.BytesIO(body))


def test_restore_refuses_another_database_kind_and_a_newer_format(event_app, tmp_path):
    assert invoke(event_app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    _, manifest = read_backup(tmp_path / "event.tar.gz")
    other = "postgresql" if manifest["database"] == "sqlite" else "sqlite"
    _rewrite_manifest(tmp_path / "event.tar.gz", tmp_path / "other-kind.tar.gz", database=other)
    result = invoke(event_app, "restore", str(tmp_path / "other-kind.tar.gz"), "--yes")
    assert result.exit_code != 0 and "this instance is configured for" in result.output
    _rewrite_manifest(tmp_path / "event.tar.gz", tmp_path / "newer.tar.gz", format_version=99)
    result = invoke(event_app, "restore", str(tmp_path / "newer.tar.gz"), "--yes")
    assert result.exit_code != 0 and "newer than this version reads" in result.output


def test_reset_keeps_passwords_and_removes_participants(event_app, tmp_path):
    with new_session(event_app) as db:
        settings = db.get(EventSettings, 1)
        settings.announcement, settings.freeze_at = "Pizza at six", utcnow()
        db.add(ExerciseControl(slug="fine-tuning", open=False, quota_set=False))
        db.add(LoginThrottle(scope="name", key="person 0", failures=3))
        db.commit()
    assert invoke(event_app, "reset", "--yes").exit_code != 0  # no backup yet
    assert invoke(event_app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    refused = invoke(event_app, "reset")
    assert refused.exit_code != 0 and "--yes" in refused.output
    result = invoke(event_app, "reset", "--yes")
    assert result.exit_code == 0, result.output
    assert "6 participants" in result.output and "24 submissions" in result.output
    for model in (Participant, Submission, ExerciseControl, LoginThrottle):
        assert count(event_app, model) == 0
    with new_session(event_app) as db:
        settings = db.get(EventSettings, 1)
    assert settings.announcement is None and settings.freeze_at is None
    assert settings.title == "Test workshop" and settings.active_dataset == "synthetic"
    assert check_password(settings.event_password_hash, EVENT_PASSWORD)


def test_reset_refuses_without_a_recent_backup(event_app, tmp_path):
    result = invoke(event_app, "reset", "--yes")
    assert result.exit_code != 0 and "make a backup first" in result.output and "none recorded" in result.output
    record = tmp_path / "instance" / LAST_BACKUP
    assert invoke(event_app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    old = json.loads(record.read_text())
    old["at"] = (utcnow() - timedelta(hours=2)).isoformat() + "Z"
    record.write_text(json.dumps(old))
    result = invoke(event_app, "reset", "--yes")
    assert result.exit_code != 0 and "the last was at" in result.output
    assert count(event_app, Participant) == 6
    assert invoke(event_app, "reset", "--yes", "--force").exit_code == 0
    assert count(event_app, Participant) == 0


def test_reset_refuses_while_a_job_runs_and_removes_the_kept_predictions(event_app, tmp_path):
    """SQLite gives a later submission the id of a deleted one: no kept predictions may survive a reset."""
    event_app.config["WORK_DIR"] = str(tmp_path / "jobs")
    running = make_submission(event_app, make_participant(event_app, "Runner"), status="running")
    kept = predictions_path(event_app, running)
    kept.parent.mkdir(parents=True)
    kept.write_text("image_id,malignant\n")
    assert invoke(event_app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    refused = invoke(event_app, "reset", "--yes")
    assert refused.exit_code != 0 and "1 job(s) are running now" in refused.output
    assert count(event_app, Participant) == 7 and kept.exists()
    result = invoke(event_app, "reset", "--yes", "--force")
    assert result.exit_code == 0 and "1 kept predictions" in result.output
    assert not kept.exists() and count(event_app, Submission) == 0


def test_backup_names_the_package_when_pg_dump_is_missing(postgres_url, data_dir, tmp_path, monkeypatch):
    from conftest import make_app

    app = next(make_app(tmp_path, data_dir, postgres_url))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke(app, "backup", str(tmp_path / "event.tar.gz"))
    app.extensions["db_engine"].dispose()
    assert result.exit_code != 0 and "postgresql-client" in result.output
    assert not (tmp_path / "event.tar.gz").exists()


@pytest.fixture
def sqlite_app(tmp_path, data_dir):
    """Always on SQLite, also where WORKSHOP_DATABASE_URL puts the `app` fixture on PostgreSQL."""
    from conftest import make_app

    yield from make_app(tmp_path, data_dir, f"sqlite:///{tmp_path / 'test.db'}")


def test_restore_refuses_while_the_sqlite_database_is_open_elsewhere(sqlite_app, tmp_path):
    import sqlite3

    app = sqlite_app
    app.instance_path = str(tmp_path / "instance")
    assert invoke(app, "backup", str(tmp_path / "event.tar.gz")).exit_code == 0
    server = sqlite3.connect(tmp_path / "test.db")  # a running server keeps its connection
    server.execute("PRAGMA journal_mode=WAL")
    server.execute("SELECT count(*) FROM participants").fetchone()
    try:
        result = invoke(app, "restore", str(tmp_path / "event.tar.gz"), "--yes")
    finally:
        server.close()
    assert result.exit_code != 0 and "stop `workshop serve`" in result.output
