"""What the worker API (server/views/worker_api.py) does for remote workers, which hold no database and no labels.

A worker downloads the public part of a data set and the allowed weights files (listed with their SHA-256),
claims jobs, renews their leases, reports progress and slot heartbeats, and uploads what the sandbox wrote;
the server scores it here with the private labels. Every write about a job goes through the database job
store and is conditional on the claim token, exactly as for a local slot.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from grader.data import DatasetError, dataset_paths
from grader.data.checksum import file_sha256
from grader.executor import ClaimedJob, SlotReport
from grader.grading import GradeResult, Progress
from grader.remote_run import RunOutput, interpret_output
from grader.storable import storable_text
from grader.weights import catalog_weights
from server.catalog import catalog
from server.db import new_session
from server.errors import NotFound, WorkshopError
from server.job_store import DatabaseJobStore, with_dataset_record
from server.kept import predictions_path, share_with_web_group
from server.models import Submission

# the files of a data set's public/ folder a worker may fetch: images and labels of train and val, test images
# and their opaque ids (test.csv has no label column); nothing under private/ is ever served
PUBLIC_FILES = ("train.npy", "train.csv", "val.npy", "val.csv", "test.npy", "test.csv")
SLOT_STATES = ("idle", "busy", "paused", "stopped", "dead")


class Conflict(WorkshopError):
    status = 409
    code = "claim_lost"


def dataset_manifest(app: Flask, name: str) -> dict:
    """The public files of data set ``name`` with size and SHA-256 (what a worker caches and checks)."""
    try:
        paths = dataset_paths(app.config["DATA_DIR"], name)
    except DatasetError as error:
        raise NotFound(str(error)) from None
    files = [paths.public / file for file in PUBLIC_FILES]
    if not all(path.is_file() for path in files):
        raise NotFound(f"There is no complete data set called {name!r} on the server.")
    return {
        "dataset": name,
        "files": [{"name": path.name, "size": path.stat().st_size, "sha256": file_sha256(path)} for path in files],
    }


def public_file(app: Flask, name: str, file: str) -> Path:
    """The path of one public file of a data set; only the names in PUBLIC_FILES, never a private one."""
    if file not in PUBLIC_FILES:
        raise NotFound("Only the public files of a data set can be fetched.")
    try:
        path = dataset_paths(app.config["DATA_DIR"], name).public / file
    except DatasetError as error:
        raise NotFound(str(error)) from None
    if not path.is_file():
        raise NotFound(f"{name}/{file} is not on the server.")
    return path


def weights_manifest(app: Flask) -> dict:
    """The weights files the exercises allow and the server has, with size and SHA-256."""
    models = Path(app.config["KERAS_HOME"]) / "models"
    present = [models / item.file_name for item in catalog_weights(catalog(app).values())]
    return {
        "files": [{"name": p.name, "size": p.stat().st_size, "sha256": file_sha256(p)} for p in present if p.is_file()]
    }


def weights_file(app: Flask, file: str) -> Path:
    allowed = {item.file_name for item in catalog_weights(catalog(app).values())}
    path = Path(app.config["KERAS_HOME"]) / "models" / file
    if file not in allowed or not path.is_file():
        raise NotFound("Only the weights files the exercises allow can be fetched.")
    return path


def claim(app: Flask, worker_name: str, slot: str) -> dict | None:
    """Claim the next job in fair order for ``worker_name``'s ``slot``; what the worker needs to run it."""
    lease = float(app.config["LEASE_SECONDS"])
    job = DatabaseJobStore(app).claim_next_job(storable_text(f"{worker_name}/{slot}", 255), lease)
    if job is None:
        return None
    exercise = catalog(app).get(job.exercise_slug)
    facts = {}
    if exercise is not None:
        facts = {
            "image_size": exercise.image_size,
            "time_limit": exercise.time_limit,
            "memory_limit_mb": exercise.memory_limit_mb,
            "allowed_weights": list(exercise.allowed_weights),
        }
    return {
        "submission_id": job.submission_id,
        "token": job.token,
        "code": job.code,
        "exercise_slug": job.exercise_slug,
        "exercise": facts,
        "dataset": job.dataset,
        "seed": job.seed,
        "lease_seconds": lease,
    }


def claimed(submission_id: int, token: object) -> ClaimedJob:
    """The claim a request names (only its id and token matter to the store)."""
    if not isinstance(token, str) or not 0 < len(token) <= 64:
        raise WorkshopError("Send the claim token the claim returned.")
    return ClaimedJob(submission_id, token, "", "", "")


def renew(app: Flask, job: ClaimedJob) -> bool:
    return DatabaseJobStore(app).renew_lease(job, float(app.config["LEASE_SECONDS"]))


def progress(app: Flask, job: ClaimedJob, body: dict) -> None:
    log, history = body.get("log"), body.get("history")
    if not isinstance(log, str) or not isinstance(history, list):
        raise WorkshopError("Send the progress as {token, log: text, history: [epoch records]}.")
    DatabaseJobStore(app).report_progress(job, Progress(log=log, history=history))


def holds(app: Flask, job: ClaimedJob) -> bool:
    """Whether this claim still holds the job (a cancelled or requeued job is not scored)."""
    with new_session(app) as db:
        row = db.execute(
            select(Submission.id).where(
                Submission.id == job.submission_id, Submission.claim_token == job.token, Submission.status == "running"
            )
        ).first()
    return row is not None


def record_upload(app: Flask, job: ClaimedJob, body: object) -> bool:
    """Score an uploaded sandbox output with the private labels and record the verdict under the claim."""
    output = RunOutput.from_json(body)  # BadOutput (a ValueError) for anything malformed
    if not holds(app, job):
        raise Conflict("This job is no longer yours (cancelled, or its lease expired and it was requeued).")
    with new_session(app) as db:
        row = db.get(Submission, job.submission_id)
        slug, dataset_name = row.exercise_slug, row.dataset
    exercise = catalog(app).get(slug)
    if exercise is None:
        result = GradeResult(status="failed", error_kind="runtime_error", message=f"unknown exercise {slug}")
    else:
        dataset = dataset_paths(app.config["DATA_DIR"], dataset_name)
        keep = predictions_path(app, job.submission_id)
        work_dir = Path(app.config["WORK_DIR"])
        work_dir.mkdir(parents=True, exist_ok=True)
        result = interpret_output(output, dataset, metric=exercise.metric, keep=keep, work_dir=work_dir)
        result = with_dataset_record(result, dataset)
        share_with_web_group(keep)
    return DatabaseJobStore(app).record_result(job, result)


def record_failure(app: Flask, job: ClaimedJob, body: dict) -> bool:
    """A worker's own failure (its sandbox refused, it could not fetch the data): infrastructure, retried later."""
    message = body.get("message")
    if not isinstance(message, str):
        raise WorkshopError("Send {token, message} for an infrastructure failure.")
    result = GradeResult(status="failed", error_kind="infrastructure", message=storable_text(message, 1000))
    if body.get("minimal"):  # the worker could not even store its verdict: fail it for good, in plain words
        return DatabaseJobStore(app).fail_job(job, result.message)
    return DatabaseJobStore(app).record_result(job, result)


def release(app: Flask, job: ClaimedJob) -> None:
    DatabaseJobStore(app).release_job(job, "the worker stopped while running it")


def report_slot(app: Flask, worker_name: str, body: dict) -> None:
    """A remote slot's heartbeat, named after its worker token so that no worker speaks for another."""
    name, state = body.get("name"), body.get("state")
    if not isinstance(name, str) or state not in SLOT_STATES:
        raise WorkshopError(f"Send a slot report with a name and a state ({', '.join(SLOT_STATES)}).")
    numbers = {
        key: body.get(key) for key in ("paused_seconds", "submission_id", "jobs_done", "infrastructure_failures")
    }
    numbers |= {key: body.get(key) for key in ("uid", "gpu")}
    for key, value in numbers.items():
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0):
            raise WorkshopError(f"{key} must be a number")
    reason = body.get("reason")
    report = SlotReport(
        name=storable_text(f"{worker_name}/{name}", 255),
        state=state,
        reason=reason if isinstance(reason, str) else None,
        paused_seconds=float(numbers["paused_seconds"] or 0),
        submission_id=_int(numbers["submission_id"]),
        jobs_done=int(numbers["jobs_done"] or 0),
        infrastructure_failures=int(numbers["infrastructure_failures"] or 0),
        uid=_int(numbers["uid"]),
        gpu=_int(numbers["gpu"]),
    )
    DatabaseJobStore(app).report_slot(report)


def _int(value) -> int | None:
    return None if value is None else int(value)
