"""One submission: status, live log and metrics while it runs, then the score or the error."""

from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from server.catalog import catalog
from server.db import get_db
from server.errors import WorkshopError
from server.finals import can_be_final, finals_count, set_final
from server.openapi import MAX_SUBMISSION_ID
from server.queueing import cancel_submission
from server.scoreboard import MAX_FINAL
from server.submissions import as_json, queue_json, visible_metrics, visible_submission

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


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>")
def show(submission_id: int):
    return _page(visible_submission(submission_id))


def _page(submission, error: str | None = None, status: int = 200):
    db = get_db()
    mine = g.participant is not None and submission.participant_id == g.participant.id
    finals = finals_count(db, submission.participant_id, submission.exercise_slug)
    page = render_template(
        "submissions/show.html",
        errors=[error] if error else [],
        mine=mine,
        can_mark=mine and (submission.final or can_be_final(submission)),
        finals=finals,
        max_final=MAX_FINAL,
        submission=submission,
        metrics=visible_metrics(submission),
        exercise=catalog().get(submission.exercise_slug),
        explanation=ERROR_EXPLANATIONS.get(submission.error_kind or ""),
        queue=queue_json(submission),
    )
    return page, status


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


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>/final", methods=["POST"])
def mark_final(submission_id: int):
    """Mark or unmark as final (the owner only; others get 404 from visible_submission or set_final)."""
    submission = visible_submission(submission_id)
    final = request.form.get("final") == "1"
    try:
        set_final(get_db(), g.participant, submission, final)
    except WorkshopError as error:
        if error.status == 404:
            raise
        get_db().rollback()
        return _page(get_db().get(type(submission), submission_id), error.message, error.status)
    flash("Marked as final: it counts for the private board." if final else "No longer marked as final.")
    return redirect(url_for("submissions.show", submission_id=submission_id))
