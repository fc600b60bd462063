"""Submissions as jobs: queueing, and the database-backed job store the executors claim from."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import func, select, update

from grader.datasets import dataset_paths
from grader.executor import ClaimedJob
from grader.exercises import Exercise, load_catalog
from grader.grading import GradeResult, Progress, check_source, grade
from server.db import new_session
from server.errors import NotFound, WorkshopError
from server.models import EventSettings, Participant, Submission, utcnow

MAX_OPEN_SUBMISSIONS = 3  # queued or running per participant, so nobody fills the queue
LIVE_LOG_CHARS = 20000


def catalog(app: Flask | None = None) -> dict[str, Exercise]:
    app = app or current_app
    if "catalog" not in app.extensions:
        app.extensions["catalog"] = load_catalog(app.config["EXERCISES_DIR"])
    return app.extensions["catalog"]


def get_exercise(slug: str) -> Exercise:
    exercise = catalog().get(slug)
    if exercise is None:
        raise NotFound(f"There is no exercise called {slug!r}.")
    return exercise


def active_dataset(db) -> str:
    settings = db.get(EventSettings, 1)
    return settings.active_dataset if settings else "synthetic"


def queue_submission(db, participant: Participant, exercise: Exercise, code: bytes | str, filename: str | None):
    """Check and store a submission as ``queued``; raises a WorkshopError whose message the participant sees."""
    from grader.grading import SubmissionRejected

    try:
        text = check_source(code)
    except SubmissionRejected as error:
        raise WorkshopError(str(error)) from None
    open_count = db.scalar(
        select(func.count(Submission.id)).where(
            Submission.participant_id == participant.id,
            Submission.status.in_(("queued", "running", "scoring")),
        )
    )
    if open_count >= MAX_OPEN_SUBMISSIONS:
        raise WorkshopError(f"You already have {open_count} submissions waiting or running; wait until one finishes.")
    submission = Submission(
        participant_id=participant.id,
        exercise_slug=exercise.slug,
        dataset=active_dataset(db),
        code=text,
        filename=filename,
        status="queued",
    )
    db.add(submission)
    db.commit()
    return submission


class DatabaseJobStore:
    """The ``JobStore`` of grader.executor on top of the app's database."""

    def __init__(self, app: Flask, max_attempts: int = 3):
        self.app, self.max_attempts = app, max_attempts

    def claim_next_job(self, worker: str, lease_seconds: float) -> ClaimedJob | None:
        with new_session(self.app) as db, db.begin():
            now = utcnow()
            self._requeue_expired(db, now)
            query = select(Submission.id).where(Submission.status == "queued").order_by(Submission.id).limit(1)
            if db.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            candidate = db.scalar(query)
            if candidate is None:
                return None
            token = secrets.token_hex(16)
            claimed = db.execute(
                update(Submission)
                .where(Submission.id == candidate, Submission.status == "queued")
                .values(
                    status="running",
                    claim_token=token,
                    worker=worker[:255],
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    started_at=now,
                    attempts=Submission.attempts + 1,
                )
            )
            if claimed.rowcount != 1:
                return None
            row = db.get(Submission, candidate)
            return ClaimedJob(row.id, token, row.code, row.exercise_slug, row.dataset)

    def _requeue_expired(self, db, now) -> None:
        """Jobs whose worker died go back to the queue; one that killed its worker too often fails instead."""
        expired = (Submission.status.in_(("running", "scoring")), Submission.lease_expires_at < now)
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
        db.execute(
            update(Submission)
            .where(*expired)
            .values(status="queued", claim_token=None, worker=None, lease_expires_at=None)
        )

    def _owned(self, job: ClaimedJob):
        return update(Submission).where(Submission.id == job.submission_id, Submission.claim_token == job.token)

    def renew_lease(self, job: ClaimedJob, lease_seconds: float) -> bool:
        with new_session(self.app) as db, db.begin():
            expires = utcnow() + timedelta(seconds=lease_seconds)
            return db.execute(self._owned(job).values(lease_expires_at=expires)).rowcount == 1

    def report_progress(self, job: ClaimedJob, progress: Progress) -> None:
        with new_session(self.app) as db, db.begin():
            db.execute(self._owned(job).values(log=progress.log[-LIVE_LOG_CHARS:], history=progress.history))

    def release_job(self, job: ClaimedJob, reason: str) -> None:
        with new_session(self.app) as db, db.begin():
            db.execute(self._owned(job).values(status="queued", claim_token=None, worker=None, lease_expires_at=None))

    def record_result(self, job: ClaimedJob, result: GradeResult) -> bool:
        """Store the verdict, unless the claim was lost; infrastructure failures are retried, never charged."""
        with new_session(self.app) as db, db.begin():
            row = db.get(Submission, job.submission_id)
            if row is None or row.claim_token != job.token:
                return False
            if result.error_kind == "infrastructure" and row.attempts < self.max_attempts:
                row.status, row.claim_token, row.worker, row.lease_expires_at = "queued", None, None, None
                row.notes = [*(row.notes or []), f"retried after an infrastructure problem: {result.message}"]
                return True
            row.status = result.status
            row.error_kind, row.error_message, row.traceback = (
                result.error_kind,
                result.message,
                result.traceback,
            )
            row.public_score, row.private_score = result.public_score, result.private_score
            row.metrics, row.history, row.notes, row.run_info = (
                result.metrics,
                result.history,
                result.notes,
                result.run_info,
            )
            row.log, row.seconds = result.log, result.seconds
            row.finished_at, row.claim_token, row.lease_expires_at = utcnow(), None, None
            return True


def cancel_submission(db, submission: Submission) -> bool:
    """Cancel a queued or running submission; a running job's worker notices at its next lease renewal."""
    cancelled = db.execute(
        update(Submission)
        .where(Submission.id == submission.id, Submission.status.in_(("queued", "running", "scoring")))
        .values(status="cancelled", claim_token=None, lease_expires_at=None, finished_at=utcnow())
    )
    db.commit()
    return cancelled.rowcount == 1


def sandbox_options(app: Flask, backend: str | None = None) -> dict:
    """Constructor options of the sandbox backend: the Docker image comes from WORKSHOP_DOCKER_IMAGE."""
    if (backend or app.config["SANDBOX"]) == "docker" and app.config.get("DOCKER_IMAGE"):
        return {"image": app.config["DOCKER_IMAGE"]}
    return {}


def grade_claimed_job(app: Flask, job: ClaimedJob, uid: int, on_progress, gpu: int | None = None) -> GradeResult:
    """What a worker slot runs for each claimed job."""
    exercise = catalog(app).get(job.exercise_slug)
    if exercise is None:
        return GradeResult(status="failed", error_kind="runtime_error", message=f"unknown exercise {job.exercise_slug}")
    dataset = dataset_paths(app.config["DATA_DIR"], job.dataset)
    return grade(
        job.code,
        exercise,
        dataset,
        sandbox=app.config["SANDBOX"],
        work_dir=Path(app.config["WORK_DIR"]),
        uid=uid,
        on_progress=on_progress,
        weights_dir=Path(app.config["KERAS_HOME"]) / "models",
        gpu=gpu,
        sandbox_options=sandbox_options(app),
    )
