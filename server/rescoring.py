"""Scoring a submission again from its kept predictions (seconds, no training), running it again in full
(queued after everyone's own jobs, never charged), and freeing stuck jobs.

Each rescore or rerun moves the current verdict into ``Submission.verdicts`` (oldest first); the new one counts.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select

from grader.data import HiddenLabels, dataset_paths, read_test_labels
from grader.metrics import DEFAULT_METRIC
from grader.scoring import MAX_PREDICTIONS_BYTES, leaderboard_scores, read_untrusted, score_predictions
from server.catalog import catalog
from server.job_store import RESTART_NOTE, add_note, predictions_path
from server.models import Submission, WorkerSlot, utcnow

MAX_VERDICTS = 20
WORKER_SILENT_SECONDS = 120  # a slot silent this long (or a lease expired): its worker has vanished


class CannotRescore(Exception):
    """This submission cannot be scored again; the message says why in plain words."""


@dataclass(frozen=True)
class Outcome:
    """What happened to each submission of a batch: rescored (or queued again) ids and refusals with reasons."""

    done: list[int]
    refused: dict[int, str]


def verdict_of(submission: Submission) -> dict:
    """The submission's current verdict as plain data; ``how`` says how it came about."""
    earlier = submission.verdicts or []
    return {
        "status": submission.status,
        "error_kind": submission.error_kind,
        "public_score": submission.public_score,
        "private_score": submission.private_score,
        "metrics": submission.metrics,
        "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
        "how": earlier[-1].get("replaced_by", "graded") if earlier else "graded",
    }


def _push_verdict(submission: Submission, replaced_by: str) -> None:
    entry = verdict_of(submission) | {"replaced_by": replaced_by, "replaced_at": utcnow().isoformat()}
    submission.verdicts = [*(submission.verdicts or [])[-(MAX_VERDICTS - 1) :], entry]


def kept_state(app: Flask, submission_id: int) -> str:
    """``kept``, ``none``, or ``unreadable``: kept by a worker running as root, which this process (e.g. the
    web server's own user) may not read; ``workshop rescore`` as root can."""
    path = predictions_path(app, submission_id)
    try:
        path.stat()
        with path.open("rb"):
            return "kept"
    except FileNotFoundError:
        return "none"
    except PermissionError:
        return "unreadable"


def read_kept(app: Flask, submission_id: int, expected_ids: list[str]) -> dict[str, float]:
    """The kept predictions, checked again against the data set's current test ids."""
    path = predictions_path(app, submission_id)
    if kept_state(app, submission_id) == "unreadable":
        raise CannotRescore(f"this process cannot read the kept predictions; run `workshop rescore {submission_id}`")
    try:
        raw = read_untrusted(path.parent, path.name, MAX_PREDICTIONS_BYTES)
    except ValueError as error:
        raise CannotRescore(f"the kept predictions are unreadable: {error}") from None
    if raw is None:
        raise CannotRescore("no predictions were kept for this submission; rerun it instead")
    rows = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"), newline=""))
    if next(rows, None) != ["image_id", "malignant"]:
        raise CannotRescore("the kept predictions have no image_id,malignant header; rerun it instead")
    predictions = {row[0]: float(row[1]) for row in rows if len(row) == 2 and _probability(row[1])}
    if set(predictions) != set(expected_ids):
        raise CannotRescore("the kept predictions do not match the data set's test images; rerun it instead")
    return predictions


def _probability(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0


def rescore(app: Flask, db, submission: Submission, labels: HiddenLabels | None = None) -> dict:
    """Score the kept predictions against the private labels, as grading does; the old verdict is kept.

    The scores are the exercise's leaderboard metric as the catalog says now (``metric`` in exercise.toml), the
    figures are computed again too. Raises CannotRescore for a submission that never produced predictions (or
    is still open). The caller commits.
    """
    if submission.status != "done":
        raise CannotRescore(f"only a scored submission can be rescored (this one is {submission.status}); rerun it")
    if labels is None:
        labels = read_test_labels(dataset_paths(app.config["DATA_DIR"], submission.dataset))
    metrics = score_predictions(read_kept(app, submission.id, list(labels.labels)), labels)
    _push_verdict(submission, "rescored")
    submission.error_kind = submission.error_message = None
    submission.public_score, submission.private_score = leaderboard_scores(metrics, _metric_of(app, submission))
    submission.metrics = metrics
    return metrics


def _metric_of(app: Flask, submission: Submission) -> str:
    """The exercise's leaderboard metric; the default for an exercise no longer in the catalog."""
    exercise = catalog(app).get(submission.exercise_slug)
    return exercise.metric if exercise is not None else DEFAULT_METRIC


def rescore_exercise(app: Flask, db, slug: str) -> Outcome:
    """Rescore every scored submission of an exercise (labels read once per data set); commits once."""
    labels: dict[str, HiddenLabels] = {}
    done, refused = [], {}
    for submission in _of_exercise(db, slug, ("done",)):
        if submission.dataset not in labels:
            labels[submission.dataset] = read_test_labels(dataset_paths(app.config["DATA_DIR"], submission.dataset))
        try:
            rescore(app, db, submission, labels[submission.dataset])
        except CannotRescore as error:
            refused[submission.id] = str(error)
        else:
            done.append(submission.id)
    db.commit()
    return Outcome(done, refused)


def rerun(db, submission: Submission) -> None:
    """Queue a finished submission again in full: after everyone's own jobs (priority -1), never charged."""
    if not submission.is_terminal:
        raise CannotRescore(f"submission {submission.id} is still {submission.status}; wait or cancel it first")
    _push_verdict(submission, "rerun")
    for column in ("error_kind", "error_message", "traceback", "public_score", "private_score", "metrics"):
        setattr(submission, column, None)
    for column in ("log", "history", "seconds", "started_at", "finished_at", "worker", "not_before"):
        setattr(submission, column, None)
    submission.status, submission.priority, submission.charged, submission.attempts = "queued", -1, False, 0
    submission.notes = [note for note in submission.notes or [] if note.startswith("Warning: ")]  # queue-time ones


def rerun_exercise(db, slug: str) -> Outcome:
    """Queue every finished submission of an exercise again (cancelled ones stay cancelled); commits once."""
    done = []
    for submission in _of_exercise(db, slug, ("done", "failed")):
        rerun(db, submission)
        done.append(submission.id)
    db.commit()
    return Outcome(done, {})


def _of_exercise(db, slug: str, statuses: tuple[str, ...]) -> list[Submission]:
    query = select(Submission).where(Submission.exercise_slug == slug, Submission.status.in_(statuses))
    return list(db.scalars(query.order_by(Submission.id)))


def worker_vanished(db, submission: Submission, now=None) -> bool:
    """A running job whose lease expired, or whose worker slot has been silent (or reported itself gone)."""
    if submission.status != "running":
        return False
    now = now or utcnow()
    if submission.lease_expires_at is None or submission.lease_expires_at < now:
        return True
    slot = db.scalar(select(WorkerSlot).where(WorkerSlot.current_submission_id == submission.id))
    if slot is None:
        return False
    return slot.state in ("stopped", "dead") or (now - slot.heartbeat_at).total_seconds() > WORKER_SILENT_SECONDS


def free_stuck(db, submission: Submission, action: str) -> None:
    """Fail (``fail``) or requeue (``requeue``) a running job whose worker vanished, with a note it shows."""
    if not worker_vanished(db, submission):
        raise CannotRescore("its worker has not vanished (lease valid, slot reporting); cancel it instead")
    submission.claim_token, submission.lease_expires_at, submission.worker = None, None, None
    if action == "requeue":
        submission.status, submission.not_before = "queued", None
        submission.notes = add_note(submission.notes, RESTART_NOTE)
        return
    submission.status, submission.error_kind, submission.finished_at = "failed", "infrastructure", utcnow()
    submission.error_message = "the worker running this job stopped; the instructor ended it"
    submission.notes = add_note(submission.notes, "your job was stopped because its worker stopped")
