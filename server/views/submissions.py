"""One submission: status, live log and metrics while it runs, then the score or the error."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, url_for

from server.catalog import catalog
from server.db import get_db
from server.openapi import MAX_SUBMISSION_ID
from server.queueing import cancel_submission
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
    submission = visible_submission(submission_id)
    return render_template(
        "submissions/show.html",
        submission=submission,
        metrics=visible_metrics(submission),
        exercise=catalog().get(submission.exercise_slug),
        explanation=ERROR_EXPLANATIONS.get(submission.error_kind or ""),
        queue=queue_json(submission),
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
