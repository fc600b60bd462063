"""What the pages and the API show of submissions: who may see one, its JSON, a participant's list, an upload."""

from __future__ import annotations

from datetime import datetime

from flask import abort, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import get_db
from server.errors import WorkshopError
from server.fair_queue import queue_place
from server.models import Participant, Submission


def iso_utc(moment: datetime) -> str:
    """A naive UTC time (as the database stores them) in ISO 8601 with a ``Z``, as the JSON API writes times."""
    return moment.isoformat() + "Z"


def my_submissions(db: Session, participant: Participant | None, slug: str) -> list[Submission]:
    """The participant's latest 50 submissions to one exercise, newest first (none for a visitor)."""
    if participant is None:
        return []
    return list(
        db.scalars(
            select(Submission)
            .where(Submission.participant_id == participant.id, Submission.exercise_slug == slug)
            .order_by(Submission.id.desc())
            .limit(50)
        )
    )


def visible_submission(submission_id: int) -> Submission:
    """The submission, if the current user may see it (its owner or the instructor); 404 otherwise."""
    submission = get_db().get(Submission, submission_id)
    if submission is None:
        abort(404)
    if not g.is_instructor and (g.participant is None or submission.participant_id != g.participant.id):
        abort(404)
    return submission


def shows_private_figures() -> bool:
    """Private-partition figures are the instructor's alone (until a reveal, which a later version adds)."""
    return bool(g.get("is_instructor"))


def visible_metrics(submission: Submission) -> dict:
    """The metrics the current viewer may see: the instructor everything; a participant ``public`` and
    ``figures.public`` only (the public partition's metrics, ROC curve, operating point and confusion matrix)."""
    metrics = submission.metrics or {}
    if shows_private_figures():
        return metrics
    visible = {"public": metrics["public"]} if "public" in metrics else {}
    figures = metrics.get("figures")
    if isinstance(figures, dict) and "public" in figures:
        visible["figures"] = {"public": figures["public"]}
    return visible


def as_json(submission: Submission) -> dict:
    private = {"private_score": submission.private_score} if shows_private_figures() else {}
    return {
        "id": submission.id,
        "exercise": submission.exercise_slug,
        "status": submission.status,
        "error_kind": submission.error_kind,
        "error_message": submission.error_message,
        "traceback": submission.traceback,
        "public_score": submission.public_score,
        **private,
        "metrics": visible_metrics(submission),
        "history": submission.history or [],
        "notes": submission.notes or [],
        "log": submission.log or "",
        "seconds": submission.seconds,
        "created_at": iso_utc(submission.created_at),
        "final": submission.final,
        "seed": submission.seed,
        **queue_json(submission),
    }


def queue_json(submission: Submission) -> dict:
    """A queued job's place in the fair order and when it should start (``eta``; None without working slots)."""
    if submission.status != "queued":
        return {"queue_position": None, "eta": None}
    place = queue_place(get_db(), submission.id)
    if place is None:
        return {"queue_position": None, "eta": None}
    return {"queue_position": place.position, "eta": iso_utc(place.eta) if place.eta else None}


def uploaded_code() -> tuple[bytes, str] | None:
    """The uploaded ``file`` of a submission and its name, or None when nothing was uploaded."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return None
    if not upload.filename.endswith(".py"):
        raise WorkshopError("Upload a Python file ending in .py.")
    return upload.read(), upload.filename[-255:]
