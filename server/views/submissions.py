"""One submission: status, live log and metrics while it runs, then the score or the error."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, url_for
from sqlalchemy import func, select

from server.catalog import catalog
from server.db import get_db
from server.models import Submission
from server.openapi import MAX_SUBMISSION_ID
from server.queueing import cancel_submission

bp = Blueprint("submissions", __name__)
SUBMISSION_ID = f"int(max={MAX_SUBMISSION_ID})"  # larger ids overflow the database's INTEGER: simply not found

ERROR_EXPLANATIONS = {
    "syntax_error": "Python could not read your code.",
    "import_error": "Your code imports a module that is not available in the sandbox.",
    "runtime_error": "Your code raised an error.",
    "timeout": "Your code ran past the exercise's time limit and was stopped.",
    "out_of_memory": "Your code used more memory than the exercise allows.",
    "invalid_predictions": "Your model's predictions could not be scored.",
    "infrastructure": "Something went wrong on our side; it was not your fault.",
}


def visible_submission(submission_id: int) -> Submission:
    """The submission, if the current user may see it (its owner or the instructor); 404 otherwise."""
    submission = get_db().get(Submission, submission_id)
    if submission is None:
        abort(404)
    if not g.is_instructor and (g.participant is None or submission.participant_id != g.participant.id):
        abort(404)
    return submission


def queue_position(submission: Submission) -> int | None:
    if submission.status != "queued":
        return None
    earlier = select(func.count(Submission.id)).where(Submission.status == "queued", Submission.id < submission.id)
    return get_db().scalar(earlier) + 1


def shows_private_figures() -> bool:
    """Private-partition figures are the instructor's alone (until a reveal, which a later version adds)."""
    return bool(g.get("is_instructor"))


def visible_metrics(submission: Submission) -> dict:
    """The metrics the current viewer may see: participants get the public partition only."""
    metrics = submission.metrics or {}
    if shows_private_figures():
        return metrics
    return {key: value for key, value in metrics.items() if key == "public"}


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
        "created_at": submission.created_at.isoformat() + "Z",
        "queue_position": queue_position(submission),
    }


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>")
def show(submission_id: int):
    submission = visible_submission(submission_id)
    return render_template(
        "submissions/show.html",
        submission=submission,
        metrics=visible_metrics(submission),
        exercise=catalog().get(submission.exercise_slug),
        explanation=ERROR_EXPLANATIONS.get(submission.error_kind or ""),
        queue_position=queue_position(submission),
    )


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>.json")
def show_json(submission_id: int):
    return jsonify(as_json(visible_submission(submission_id)))


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>/cancel", methods=["POST"])
def cancel(submission_id: int):
    submission = visible_submission(submission_id)
    if cancel_submission(get_db(), submission):
        flash("Cancelled. It does not count on the leaderboard.")
    else:
        flash("It had already finished.")
    return redirect(url_for("submissions.show", submission_id=submission_id))
