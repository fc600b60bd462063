"""The worker API: worker tokens only, public data only, every job write under the claim token, scored here."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json

import pytest
from factories import make_participant, make_submission

from grader.data import dataset_paths, read_test_ids
from grader.remote_run import RunOutput
from server.db import new_session
from server.models import Submission, WorkerSlot
from server.worker_api import PUBLIC_FILES
from server.worker_tokens import create_token


@pytest.fixture
def worker(app):
    """A test client and the headers of a valid worker token (named box)."""
    with new_session(app) as db:
        token = create_token(db, "box")
    return app.test_client(), {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def queued(app) -> int:
    return make_submission(app, make_participant(app, "Ada"))


def row(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        return db.get(Submission, submission_id)


def good_output(data_dir, value: float = 0.5) -> dict:
    ids = read_test_ids(dataset_paths(data_dir, "synthetic"))
    predictions = "image_id,malignant\n" + "".join(f"{image_id},{value}\n" for image_id in ids)
    files = {"predictions.csv": predictions.encode(), "status.json": json.dumps({"ok": True}).encode()}
    return RunOutput(0, False, False, "epoch 1\n", 12.5, [], files).as_json()


def test_no_or_a_wrong_or_a_revoked_token_is_refused_and_wrong_ones_are_counted(app, worker):
    client, headers = worker
    assert client.get("/worker-api/v1/weights", headers={"Accept": "application/json"}).status_code == 401
    assert (
        client.post("/worker-api/v1/claim", json={"slot": "s"}, headers={"Authorization": "Bearer wt_x"}).status_code
        == 401
    )
    assert client.get("/worker-api/v1/weights", headers=headers).status_code == 200
    with new_session(app) as db:
        from server.worker_tokens import revoke_token

        revoke_token(db, "box")
    assert client.get("/worker-api/v1/weights", headers=headers).status_code == 401
    app.config["LOGIN_TOKEN_LIMIT"] = 3
    codes = [client.get("/worker-api/v1/weights", headers=headers).status_code for _ in range(5)]
    assert 429 in codes


def test_a_participant_session_is_no_worker(app, worker):
    client, _ = worker
    participant = make_participant(app, "Eve", token="nb-token-123456")
    with client.session_transaction() as session:
        session["role"], session["participant_id"] = "participant", participant
    assert client.post("/worker-api/v1/claim", json={"slot": "s"}).status_code == 401
    notebook = {"Authorization": "Bearer nb-token-123456"}
    assert client.post("/worker-api/v1/claim", json={"slot": "s"}, headers=notebook).status_code == 401


def test_only_the_public_files_are_listed_and_served_never_the_labels(app, worker, data_dir):
    client, headers = worker
    manifest = client.get("/worker-api/v1/datasets/synthetic", headers=headers).get_json()
    assert [item["name"] for item in manifest["files"]] == list(PUBLIC_FILES)
    for item in manifest["files"]:
        body = client.get(f"/worker-api/v1/datasets/synthetic/public/{item['name']}", headers=headers).data
        assert hashlib.sha256(body).hexdigest() == item["sha256"] and len(body) == item["size"]
    test_index = client.get("/worker-api/v1/datasets/synthetic/public/test.csv", headers=headers).data.decode()
    assert next(csv.reader(io.StringIO(test_index))) == ["image_id"]
    for path in (
        "synthetic/public/test_labels.csv",
        "synthetic/public/..%2Fprivate%2Ftest_labels.csv",
        "synthetic/private/test_labels.csv",
        "synthetic/public/manifest.json",
        "..%2Fetc/public/test.csv",
    ):
        assert client.get(f"/worker-api/v1/datasets/{path}", headers=headers).status_code == 404, path
    assert client.get("/worker-api/v1/datasets/nothing-here", headers=headers).status_code == 404
    assert client.get("/worker-api/v1/weights/secret_key", headers=headers).status_code == 404


def test_claim_lease_progress_and_upload_are_scored_by_the_server(app, worker, data_dir):
    client, headers = worker
    submission_id = queued(app)
    job = client.post("/worker-api/v1/claim", json={"slot": "h:1:slot-0"}, headers=headers).get_json()["job"]
    assert job["submission_id"] == submission_id and job["dataset"] == "synthetic" and job["exercise"]["time_limit"]
    assert client.post("/worker-api/v1/claim", json={"slot": "h:1:slot-1"}, headers=headers).get_json()["job"] is None
    assert row(app, submission_id).worker == "box/h:1:slot-0"
    url = f"/worker-api/v1/jobs/{submission_id}"
    assert client.post(f"{url}/lease", json={"token": job["token"]}, headers=headers).get_json()["ok"] is True
    assert client.post(f"{url}/lease", json={"token": "0" * 32}, headers=headers).get_json()["ok"] is False
    progress = {"token": job["token"], "log": "epoch 1/3", "history": [{"epoch": 1, "loss": 0.5}]}
    assert client.post(f"{url}/progress", json=progress, headers=headers).status_code == 200
    assert row(app, submission_id).log == "epoch 1/3"
    answer = client.post(
        f"{url}/result", json={"token": job["token"], "output": good_output(data_dir)}, headers=headers
    )
    assert answer.get_json() == {"recorded": True}
    done = row(app, submission_id)
    assert done.status == "done" and done.public_score is not None and done.metrics and done.claim_token is None
    assert done.run_info["dataset"] == "synthetic"
    again = client.post(f"{url}/result", json={"token": job["token"], "output": good_output(data_dir)}, headers=headers)
    assert again.status_code == 409 and row(app, submission_id).status == "done"


def test_a_cancelled_job_takes_no_upload_and_bad_predictions_fail_as_the_participants(app, worker, data_dir):
    client, headers = worker
    first, second = queued(app), make_submission(app, make_participant(app, "Bo"))
    claim = lambda: client.post("/worker-api/v1/claim", json={"slot": "s"}, headers=headers).get_json()["job"]  # noqa: E731
    job_a, job_b = claim(), claim()
    with new_session(app) as db:
        from server.queueing import cancel_submission

        cancel_submission(db, db.get(Submission, first))
        db.commit()
    output = good_output(data_dir)
    cancelled = client.post(
        f"/worker-api/v1/jobs/{first}/result", json={"token": job_a["token"], "output": output}, headers=headers
    )
    assert cancelled.status_code == 409 and row(app, first).status == "cancelled"
    bad = good_output(data_dir, value=1.5)
    answer = client.post(
        f"/worker-api/v1/jobs/{second}/result", json={"token": job_b["token"], "output": bad}, headers=headers
    )
    assert answer.get_json() == {"recorded": True}
    failed = row(app, second)
    assert failed.status == "failed" and failed.error_kind == "invalid_predictions" and failed.public_score is None


@pytest.mark.parametrize(
    "output",
    [
        "not an object",
        {"exit_code": 0, "timed_out": False, "out_of_memory": False, "log": "", "seconds": 1, "files": {"../x": ""}},
        {"exit_code": 0, "timed_out": "no", "out_of_memory": False, "log": "", "seconds": 1},
        {
            "exit_code": 0,
            "timed_out": False,
            "out_of_memory": False,
            "log": "",
            "seconds": 1,
            "files": {"status.json": "%%%"},
        },
        {
            "exit_code": 0,
            "timed_out": False,
            "out_of_memory": False,
            "log": "",
            "seconds": 1,
            "files": {"status.json": __import__("base64").b64encode(gzip.compress(b" " * (300 * 1024))).decode()},
        },
    ],
)
def test_malformed_uploads_are_refused_and_the_job_stays_claimed(app, worker, output):
    client, headers = worker
    submission_id = queued(app)
    job = client.post("/worker-api/v1/claim", json={"slot": "s"}, headers=headers).get_json()["job"]
    answer = client.post(
        f"/worker-api/v1/jobs/{submission_id}/result", json={"token": job["token"], "output": output}, headers=headers
    )
    assert answer.status_code == 400 and row(app, submission_id).status == "running"


def test_a_workers_failure_is_infrastructure_and_retried_and_slots_are_named_after_the_token(app, worker):
    client, headers = worker
    submission_id = queued(app)
    job = client.post("/worker-api/v1/claim", json={"slot": "s"}, headers=headers).get_json()["job"]
    body = {"token": job["token"], "message": "the sandbox refused: no cgroup"}
    assert client.post(f"/worker-api/v1/jobs/{submission_id}/failure", json=body, headers=headers).get_json()[
        "recorded"
    ]
    retried = row(app, submission_id)
    assert retried.status == "queued" and "no cgroup" in retried.notes[-1] and retried.not_before is not None
    report = {"name": "h:1:slot-0", "state": "busy", "submission_id": submission_id, "jobs_done": 2, "gpu": 1}
    assert client.post("/worker-api/v1/slots", json=report, headers=headers).status_code == 200
    assert client.post("/worker-api/v1/slots", json={**report, "state": "dancing"}, headers=headers).status_code == 400
    with new_session(app) as db:
        slot = db.query(WorkerSlot).one()
        assert (slot.name, slot.state, slot.jobs_done, slot.gpu) == ("box/h:1:slot-0", "busy", 2, 1)
