"""The database-backed job store the executors claim from, and what a slot runs for each claimed job."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

from flask import Flask
from sqlalchemy import select, update

from grader.data import DatasetError, dataset_paths
from grader.data.checksum import dataset_checksum
from grader.executor import ClaimedJob, SlotReport
from grader.grading import MAX_NOTES, GradeResult, GradingSettings, Progress, grade
from grader.storable import optional_text, storable_text
from server.catalog import catalog
from server.db import new_session
from server.fair_queue import fair_order
from server.kept import predictions_path, share_with_web_group
from server.models import Submission, WorkerSlot, utcnow

LIVE_LOG_CHARS = 20000
RETRY_BASE_SECONDS = 10  # an infrastructure retry waits 10 s, then 30 s, 90 s ... (capped)
RETRY_MAX_SECONDS = 600
CLAIM_TRIES = 5  # candidates a worker tries when others claim them first
RESTART_NOTE = "your job was restarted because its worker stopped"


def add_note(notes: list | None, note: str) -> list:
    """The submission's notes with ``note`` appended (the oldest dropped beyond MAX_NOTES)."""
    return [*(notes or [])[-(MAX_NOTES - 1) :], storable_text(note, 300)]


def merge_notes(earlier: list | None, new: list) -> list:
    """The host's notes so far (queue-time warnings, restarts, retries) then the run's own, once each."""
    return list(dict.fromkeys([*(earlier or []), *new]))[-MAX_NOTES:]


def retry_delay(attempts: int) -> float:
    """Seconds an infrastructure retry waits: growing with each attempt, capped."""
    return min(RETRY_BASE_SECONDS * 3 ** max(0, attempts - 1), RETRY_MAX_SECONDS)


class DatabaseJobStore:
    """The ``JobStore`` of grader.executor on top of the app's database.

    Every write about a running job is conditional on its claim token (and status), so a job cancelled or
    taken over meanwhile is never overwritten; everything the sandbox produced is made storable first.
    """

    def __init__(self, app: Flask, max_attempts: int = 3):
        self.app, self.max_attempts = app, max_attempts

    def claim_next_job(self, worker: str, lease_seconds: float) -> ClaimedJob | None:
        """Claim the queued job whose participant used the least slot time in the last hour (ties: oldest).

        Each candidate is taken with a conditional UPDATE, so two workers never claim one job; a worker that
        loses a race tries the next candidate.
        """
        with new_session(self.app) as db, db.begin():
            now = utcnow()
            self._requeue_expired(db, now)
            for candidate in fair_order(db, now, ready_only=True)[:CLAIM_TRIES]:
                if claimed := self._claim(db, candidate, worker, lease_seconds, now):
                    return claimed
            return None

    def _claim(self, db, candidate: int, worker: str, lease_seconds: float, now) -> ClaimedJob | None:
        token = secrets.token_hex(16)
        claimed = db.execute(
            update(Submission)
            .where(Submission.id == candidate, Submission.status == "queued")
            .values(
                status="running",
                claim_token=token,
                worker=storable_text(worker, 255),
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
                not_before=None,
                attempts=Submission.attempts + 1,
            )
        )
        if claimed.rowcount != 1:
            return None
        row = db.get(Submission, candidate)
        return ClaimedJob(row.id, token, row.code, row.exercise_slug, row.dataset, row.seed)

    def _requeue_expired(self, db, now) -> None:
        """Jobs whose worker died go back to the queue (after a pause); one that killed its worker too often fails."""
        expired = (Submission.status == "running", Submission.lease_expires_at < now)
        message = f"the worker stopped {self.max_attempts} times while running this job"
        db.execute(
            update(Submission)
            .where(*expired, Submission.attempts >= self.max_attempts)
            .values(
                status="failed",
                error_kind="infrastructure",
                error_message=message,
                claim_token=None,
                lease_expires_at=None,
                finished_at=now,
            )
        )
        for row in db.execute(select(Submission.id, Submission.notes).where(*expired)).all():
            db.execute(
                update(Submission)
                .where(Submission.id == row.id, *expired)
                .values(
                    status="queued",
                    claim_token=None,
                    worker=None,
                    lease_expires_at=None,
                    not_before=now + timedelta(seconds=RETRY_BASE_SECONDS),
                    notes=add_note(row.notes, RESTART_NOTE),
                )
            )

    def _owned(self, job: ClaimedJob):
        """An UPDATE that only touches the job while this claim holds it (a cancel clears the token)."""
        return update(Submission).where(
            Submission.id == job.submission_id,
            Submission.claim_token == job.token,
            Submission.status == "running",
        )

    def renew_lease(self, job: ClaimedJob, lease_seconds: float) -> bool:
        with new_session(self.app) as db, db.begin():
            expires = utcnow() + timedelta(seconds=lease_seconds)
            return db.execute(self._owned(job).values(lease_expires_at=expires)).rowcount == 1

    def report_progress(self, job: ClaimedJob, progress: Progress) -> None:
        progress = progress.storable()
        with new_session(self.app) as db, db.begin():
            db.execute(self._owned(job).values(log=progress.log[-LIVE_LOG_CHARS:], history=progress.history))

    def release_job(self, job: ClaimedJob, reason: str) -> None:
        with new_session(self.app) as db, db.begin():
            db.execute(self._owned(job).values(status="queued", claim_token=None, worker=None, lease_expires_at=None))

    def record_result(self, job: ClaimedJob, result: GradeResult) -> bool:
        """Store the verdict unless the claim was lost; infrastructure failures wait and retry, never charged."""
        result = result.storable()
        with new_session(self.app) as db, db.begin():
            row = db.execute(
                select(Submission.attempts, Submission.notes).where(
                    Submission.id == job.submission_id, Submission.claim_token == job.token
                )
            ).first()
            if row is None:
                return False
            now = utcnow()
            if result.error_kind == "infrastructure" and row.attempts < self.max_attempts:
                delay = retry_delay(row.attempts)
                note = storable_text(f"retried after an infrastructure problem: {result.message}", 300)
                retried = db.execute(
                    self._owned(job).values(
                        status="queued",
                        claim_token=None,
                        worker=None,
                        lease_expires_at=None,
                        not_before=now + timedelta(seconds=delay),
                        notes=add_note(row.notes, note),
                    )
                )
                return retried.rowcount == 1
            recorded = db.execute(
                self._owned(job).values(
                    status=result.status,
                    error_kind=result.error_kind,
                    error_message=result.message,
                    traceback=result.traceback,
                    public_score=result.public_score,
                    private_score=result.private_score,
                    metrics=result.metrics,
                    history=result.history,
                    notes=merge_notes(row.notes, result.notes),
                    run_info=result.run_info,
                    log=result.log,
                    seconds=result.seconds,
                    finished_at=now,
                    claim_token=None,
                    lease_expires_at=None,
                )
            )
            return recorded.rowcount == 1

    def fail_job(self, job: ClaimedJob, reason: str) -> bool:
        """The minimal verdict when the full one could not be stored: failed, infrastructure, a plain reason."""
        with new_session(self.app) as db, db.begin():
            failed = db.execute(
                self._owned(job).values(
                    status="failed",
                    error_kind="infrastructure",
                    error_message=storable_text(reason, 500).encode("ascii", "replace").decode("ascii"),
                    finished_at=utcnow(),
                    claim_token=None,
                    lease_expires_at=None,
                )
            )
            return failed.rowcount == 1

    def report_slot(self, slot: SlotReport) -> None:
        """Upsert what a slot says about itself (heartbeat, state, why it paused)."""
        with new_session(self.app) as db, db.begin():
            row = db.scalar(select(WorkerSlot).where(WorkerSlot.name == slot.name))
            if row is None:
                row = WorkerSlot(name=storable_text(slot.name, 255), started_at=utcnow())
                db.add(row)
            now = utcnow()
            row.state, row.reason = slot.state, optional_text(slot.reason, 1000)
            row.current_submission_id = slot.submission_id
            row.paused_until = now + timedelta(seconds=slot.paused_seconds) if slot.paused_seconds else None
            row.jobs_done, row.infrastructure_failures = slot.jobs_done, slot.infrastructure_failures
            row.uid, row.gpu = slot.uid, slot.gpu
            row.heartbeat_at = now


def with_dataset_record(result: GradeResult, dataset) -> GradeResult:
    """The run record gains the data set's name and checksum, as they were when the job ran."""
    try:
        checksum = dataset_checksum(dataset)
    except (OSError, DatasetError):  # gone meanwhile: the verdict still counts, the record says less
        checksum = "unavailable"
    return replace(result, run_info={**(result.run_info or {}), "dataset": dataset.name, "dataset_checksum": checksum})


def grade_claimed_job(
    app: Flask, settings: GradingSettings, job: ClaimedJob, uid: int, on_progress, gpu: int | None = None
) -> GradeResult:
    """What a worker slot runs for each claimed job (``settings`` built once, when the executor starts)."""
    exercise = catalog(app).get(job.exercise_slug)
    if exercise is None:
        return GradeResult(status="failed", error_kind="runtime_error", message=f"unknown exercise {job.exercise_slug}")
    dataset = dataset_paths(app.config["DATA_DIR"], job.dataset)
    keep = predictions_path(app, job.submission_id)
    result = grade(
        job.code,
        exercise,
        dataset,
        settings,
        uid=uid,
        on_progress=on_progress,
        gpu=gpu,
        keep_predictions=keep,
        seed=job.seed,
    )
    result = with_dataset_record(result, dataset)
    share_with_web_group(keep)  # a root serve's web workers rescore from it
    return result
