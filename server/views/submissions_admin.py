"""The instructor's view of every submission: filters, one submission in full (with private figures and
kept predictions), and the actions on it: rescore, rerun, cancel, and fail or requeue a job whose worker vanished."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for

from grader.metrics import METRIC_KEYS
from server.access import instructor_required
from server.db import get_db
from server.job_store import predictions_path
from server.models import Participant, Submission
from server.queueing import cancel_submission
from server.rescoring import CannotRescore, free_stuck, kept_state, rerun, rescore, worker_vanished
from server.submissions_admin import clean_filters, filter_choices, filtered_submissions

bp = Blueprint("submissions_admin", __name__, url_prefix="/instructor/submissions")

ACTIONS = ("rescore", "rerun", "cancel", "fail", "requeue")


@bp.route("/")
@instructor_required
def index():
    db = get_db()
    filters = clean_filters(request.args)
    page = filtered_submissions(db, filters, request.args.get("page", 1, type=int) or 1)
    return render_template("instructor/submissions.html", page=page, choices=filter_choices(db))


def _submission(submission_id: int) -> Submission:
    submission = get_db().get(Submission, submission_id)
    if submission is None:
        abort(404)
    return submission


@bp.route("/<int:submission_id>")
@instructor_required
def show(submission_id: int):
    db = get_db()
    submission = _submission(submission_id)
    return render_template(
        "instructor/submission.html",
        s=submission,
        participant=db.get(Participant, submission.participant_id),
        kept=kept_state(current_app, submission.id),
        vanished=worker_vanished(db, submission),
        metric_keys=METRIC_KEYS,
    )


@bp.route("/<int:submission_id>/predictions.csv")
@instructor_required
def predictions(submission_id: int):
    path = predictions_path(current_app, _submission(submission_id).id)
    if kept_state(current_app, submission_id) != "kept":
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"predictions-{submission_id}.csv")


@bp.route("/<int:submission_id>/action", methods=["POST"])
@instructor_required
def act(submission_id: int):
    """One POST per action (the page asks first); what happened is flashed on the submission's page."""
    db = get_db()
    submission, action = _submission(submission_id), request.form.get("action", "")
    if action not in ACTIONS:
        abort(400)
    try:
        message = _perform(db, submission, action)
    except CannotRescore as error:
        db.rollback()
        message = f"#{submission_id} was not changed: {error}"
    flash(message)
    return redirect(url_for("submissions_admin.show", submission_id=submission_id))


def _perform(db, submission: Submission, action: str) -> str:
    if action == "cancel":
        done = cancel_submission(db, submission)
        return f"#{submission.id} was cancelled." if done else f"#{submission.id} had already finished."
    if action == "rescore":
        rescore(current_app, db, submission)
        message = f"#{submission.id} rescored from its kept predictions."
    elif action == "rerun":
        rerun(db, submission)
        message = f"#{submission.id} queued again after everyone's own jobs (not charged)."
    else:
        free_stuck(db, submission, action)
        message = f"#{submission.id} {'requeued' if action == 'requeue' else 'failed'}; its participant sees a note."
    db.commit()
    return message
