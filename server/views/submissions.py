"""One submission: status, live log and curves while it runs (pushed by server-sent events), then the score with
its pictures, or the error."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from server.catalog import catalog
from server.db import get_db
from server.errors import WorkshopError
from server.figures import curve_svgs, submission_pictures
from server.finals import can_be_final, finals_count, set_final
from server.live_feed import curves_fragment, elapsed_seconds, event_stream, live_slots, live_timing
from server.openapi import MAX_SUBMISSION_ID
from server.projector_feed import client_gone
from server.queueing import cancel_submission
from server.scoreboard import MAX_FINAL
from server.submissions import as_json, iso_utc, queue_json, shows_private_figures, visible_metrics, visible_submission

bp = Blueprint("submissions", __name__)
SUBMISSION_ID = f"int(max={MAX_SUBMISSION_ID})"  # larger ids overflow the database's INTEGER: simply not found

ERROR_EXPLANATIONS = {
    "syntax_error": "Python could not read your code.",
    "import_error": "Your code imports a module that is not available in the sandbox.",
    "runtime_error": "Your code raised an error.",
    "contract": "Your code ran, but not as the server calls it: train(data) must be defined at the top level of "
    "your file and return the keras.Model it trained.",
    "timeout": "Your code ran past the exercise's time limit and was stopped.",
    "out_of_memory": "Your code used more memory than the exercise allows.",
    "invalid_predictions": "Your model's predictions could not be scored.",
    "infrastructure": "Something went wrong on our side; it was not your fault.",
}
# the measures of one partition, in the order and words the page shows them
MEASURES = (
    ("roc_auc", "ROC AUC"),
    ("pauc_80", "partial AUC above 80 % sensitivity (0 to 0.2)"),
    ("average_precision", "average precision"),
    ("sensitivity", "sensitivity: melanomas caught"),
    ("specificity", "specificity: benign lesions left alone"),
    ("balanced_accuracy", "balanced accuracy"),
    ("accuracy", "accuracy"),
)
TRACEBACK_IN_LOG = "[the traceback is shown above, under the error]"


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>")
def show(submission_id: int):
    return _page(visible_submission(submission_id))


def _page(submission, error: str | None = None, status: int = 200):
    db = get_db()
    mine = g.participant is not None and submission.participant_id == g.participant.id
    metrics = visible_metrics(submission)
    exercise = catalog().get(submission.exercise_slug)
    page = render_template(
        "submissions/show.html",
        errors=[error] if error else [],
        mine=mine,
        can_mark=mine and (submission.final or can_be_final(submission)),
        finals=finals_count(db, submission.participant_id, submission.exercise_slug),
        max_final=MAX_FINAL,
        submission=submission,
        metrics=metrics,
        measures=MEASURES,
        pictures=submission_pictures(metrics, private=shows_private_figures()),
        curves=curve_svgs(submission.history or []),
        history=submission.history or [],
        log_text=log_for_page(submission.log, submission.traceback),
        exercise=exercise,
        metric_label=exercise.metric_label if exercise else "score",
        elapsed=elapsed_seconds(submission.started_at) if submission.status == "running" else None,
        times={
            name: iso_utc(value)
            for name in ("created_at", "started_at", "finished_at")
            if (value := getattr(submission, name)) is not None
        },
        explanation=ERROR_EXPLANATIONS.get(submission.error_kind or ""),
        queue=queue_json(submission),
    )
    return page, status


def log_for_page(log: str | None, traceback: str | None) -> str:
    """The log, without the traceback the failure box shows already (the harness prints it to the log too)."""
    log = log or ""
    trace = (traceback or "").strip()
    if trace and trace in log:
        return log.replace(trace, TRACEBACK_IN_LOG, 1)
    return log


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>/events")
def events(submission_id: int):
    """``text/event-stream`` of the submission's changes, for its owner and the instructor (404 for anyone else).

    Streams are few (each holds one of the web server's threads until the verdict); past them the answer is 503
    and the page polls the JSON instead."""
    visible_submission(submission_id)
    app = current_app._get_current_object()
    slots = live_slots(app)
    if not slots.take():
        return Response("Too many live pages; poll the submission's JSON.", 503, {"Retry-After": "30"})
    gone = client_gone(request.environ.get("gunicorn.socket"))
    response = Response(event_stream(app, submission_id, live_timing(app), gone=gone), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.call_on_close(slots.give_back)
    return response


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>/curves")
def curves(submission_id: int):
    """The per-epoch part of the page (pictures and table), for a page that polls instead of streaming."""
    submission = visible_submission(submission_id)
    return curves_fragment(current_app._get_current_object(), submission.history)


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
