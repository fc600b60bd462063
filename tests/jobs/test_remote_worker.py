"""A remote worker: no database, no labels; it fetches the public data once (by hash), runs the job, uploads
the output, and the server scores it. Against a live server on loopback."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest
from factories import make_participant, make_submission
from werkzeug.serving import make_server

from grader.remote_run import RunOutput
from server import create_app
from server.db import new_session
from server.executor_runtime import build_executor
from server.models import Submission, WorkerSlot
from server.worker_cache import CacheError
from server.worker_tokens import create_token, revoke_token


@pytest.fixture
def live(app):
    """The app served on a free loopback port in a thread; its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def remote_worker_app(tmp_path: Path, url: str, token: str, monkeypatch, **config):
    """A worker's app: its own instance, an empty data folder, no database of the server's, no secret key given."""
    instance = tmp_path / "worker-instance"
    monkeypatch.setenv("WORKSHOP_INSTANCE_PATH", str(instance))
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{instance / 'never-used.db'}",
            "DATA_DIR": str(instance / "no-data"),
            "WORK_DIR": str(instance / "jobs"),
            "KERAS_HOME": str(instance / "keras"),
            "SERVER_URL": url,
            "WORKER_TOKEN": token,
            "SANDBOX": "none",
            **config,
        }
    ), instance


@pytest.fixture
def token(app):
    with new_session(app) as db:
        return create_token(db, "remote-box")


def fake_sandbox(calls: list):
    """Stands in for the sandbox: predicts 0.5 for every public test id of the cached data set."""

    def run(code, exercise, dataset, settings, **kwargs):
        calls.append(dataset)
        with (dataset.public / "test.csv").open() as handle:
            ids = [row["image_id"] for row in csv.DictReader(handle)]
        predictions = "image_id,malignant\n" + "".join(
            f"{image_id},{0.1 + (i % 7) / 10}\n" for i, image_id in enumerate(ids)
        )
        files = {"predictions.csv": predictions.encode(), "status.json": b'{"ok": true}'}
        return RunOutput(0, False, False, "trained\n", 3.0, [], files)

    return run


@pytest.mark.slow  # about 7 s: three jobs scored with every metric and figure
def test_a_remote_worker_runs_jobs_the_server_scores_and_caches_the_data_by_hash(
    app, live, token, tmp_path, monkeypatch
):
    calls: list = []
    monkeypatch.setattr("server.remote_store.run_sandboxed", fake_sandbox(calls))
    worker_app, instance = remote_worker_app(tmp_path, live, token, monkeypatch)
    executor = build_executor(worker_app, slots=1)
    first = make_submission(app, make_participant(app, "Ada"))
    second = make_submission(app, make_participant(app, "Bo"))
    downloads = []
    original = executor.store.client.download
    monkeypatch.setattr(
        executor.store.client, "download", lambda path, dest: (downloads.append(path), original(path, dest))
    )
    assert executor.run_one("host:1:slot-0", uid=1000) and executor.run_one("host:1:slot-0", uid=1000)
    assert not executor.run_one("host:1:slot-0", uid=1000)  # nothing left
    with new_session(app) as db:
        for submission_id in (first, second):
            row = db.get(Submission, submission_id)
            assert row.status == "done" and row.public_score is not None and row.worker == "remote-box/host:1:slot-0"
    assert len(downloads) == 6  # the six public files, once: the second job used the cache
    cached = calls[0].public
    assert sorted(path.name for path in cached.iterdir()) == sorted(
        ["train.npy", "train.csv", "val.npy", "val.csv", "test.npy", "test.csv"]
    )
    assert not list(instance.rglob("test_labels.csv")) and not list(instance.rglob("id_map.csv"))
    (cached / "test.npy").write_bytes(b"tampered")  # a changed file is fetched again
    third = make_submission(app, make_participant(app, "Cy"))
    assert executor.run_one("host:1:slot-0", uid=1000)
    assert downloads[-1].endswith("/test.npy") and len(downloads) == 7
    with new_session(app) as db:
        assert db.get(Submission, third).status == "done"


def test_slot_reports_and_a_wrong_file_from_the_server_are_handled(app, live, token, tmp_path, monkeypatch):
    worker_app, _ = remote_worker_app(tmp_path, live, token, monkeypatch)
    executor = build_executor(worker_app, slots=1)
    executor.start()
    try:
        deadline = threading.Event()
        for _ in range(50):
            with new_session(app) as db:
                if db.query(WorkerSlot).count():
                    break
            deadline.wait(0.1)
    finally:
        executor.stop()
    with new_session(app) as db:
        slot = db.query(WorkerSlot).one()
        assert slot.name.startswith("remote-box/") and slot.state == "stopped"
    cache = executor.grade_job.args[1]
    monkeypatch.setattr(cache.client, "download", lambda path, dest: dest.write_bytes(b"not the file"))
    with pytest.raises(CacheError):
        cache.dataset("synthetic")


def test_an_unreachable_server_or_a_revoked_token_fail_as_infrastructure_never_as_the_participants(
    app, live, token, tmp_path, monkeypatch
):
    worker_app, _ = remote_worker_app(tmp_path, live, token, monkeypatch)
    executor = build_executor(worker_app, slots=1)
    submission_id = make_submission(app, make_participant(app, "Ada"))
    job = executor.store.claim_next_job("h:1:slot-0", 60)
    monkeypatch.setattr(executor.store.client, "base", "http://127.0.0.1:9/worker-api/v1")  # nobody listens
    result = executor.grade_job(job, 1000, lambda progress: None, None)
    assert result.error_kind == "infrastructure" and "cannot be reached" in result.message
    with new_session(app) as db:
        assert db.get(Submission, submission_id).status == "running"  # its lease will expire; never charged
        revoke_token(db, "remote-box")
    monkeypatch.undo()
    make_submission(app, make_participant(app, "Bo"))
    assert not executor.run_one("h:1:slot-0", uid=1000)  # refused (401): no job is claimed
    with new_session(app) as db:
        assert db.query(Submission).filter_by(status="queued").count() == 1


def test_workshop_worker_takes_the_server_and_token_as_options(app, runner, monkeypatch):
    seen = {}

    def fake_run_worker(worker_app, slots, gpus, say):
        seen.update(url=worker_app.config["SERVER_URL"], token=worker_app.config["WORKER_TOKEN"], slots=slots)

    monkeypatch.setattr("server.executor_runtime.run_worker", fake_run_worker)
    args = ["worker", "--server", "https://workshop.example", "--token", "wt_abc", "--slots", "2", "--gpus", "none"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert seen == {"url": "https://workshop.example", "token": "wt_abc", "slots": 2}
