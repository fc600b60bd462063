"""The JSON API for notebooks: list exercises, submit code, follow a submission, read a leaderboard.

Requests authenticate with the participant's personal notebook token (``Authorization: Bearer ...``,
made on /account) and never with the session cookie, so a page on another site cannot make a logged-in
browser submit: no CSRF token is needed here because no cookie is trusted here.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for

from server.boards import build_board, requested_dataset
from server.catalog import catalog, get_exercise
from server.db import get_db
from server.errors import WorkshopError
from server.event import exercise_json
from server.executor_runtime import notify_executor
from server.finals import set_final
from server.openapi import MAX_SUBMISSION_ID, openapi_document
from server.queueing import queue_submission
from server.submissions import as_json, iso_utc, uploaded_code, visible_submission
from server.submissions import my_submissions as submissions_of

bp = Blueprint("api", __name__, url_prefix="/api")


def clean_filename(name: object) -> str | None:
    """A shown file name: printable characters only (no NUL, control characters or lone surrogates), at most 255."""
    if not isinstance(name, str):
        return None
    return "".join(char for char in name if char.isprintable())[-255:] or None


def submitted_code() -> tuple[bytes | str, str | None, object]:
    """The code of a submission, its file name and seed: JSON ``{"code": ..., "seed": ...}``, a multipart
    ``file`` (with an optional ``seed`` field), or the raw body (``?seed=``)."""
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # json gives up on deep nesting with RecursionError, not ValueError
            raise WorkshopError("The JSON body is nested too deeply to read.") from None
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            raise WorkshopError('Send JSON of the form {"code": "def train(data): ..."}.')
        return body["code"], clean_filename(body.get("filename")), body.get("seed")
    code, filename = uploaded_code() or (request.get_data(), None)
    return code, clean_filename(filename), request.form.get("seed", request.args.get("seed"))


@bp.route("/openapi.json")
def openapi():
    """The OpenAPI description of this API; the one route here that needs no token (see access.load_user)."""
    return jsonify(openapi_document())


@bp.route("/exercises")
def exercises():
    db, participant_id = get_db(), g.participant.id
    return jsonify(exercises=[exercise_json(db, exercise, participant_id) for exercise in catalog().values()])


@bp.route("/exercises/<slug>/submissions", methods=["POST"])
def submit(slug: str):
    exercise = get_exercise(slug)
    code, filename, seed = submitted_code()
    submission = queue_submission(
        get_db(), g.participant, exercise, code, filename, current_app.config["MAX_OPEN_SUBMISSIONS"], seed=seed
    )
    notify_executor()
    body = {**as_json(submission), "url": url_for("submissions.show", submission_id=submission.id, _external=True)}
    return jsonify(body), 201, {"Location": url_for("api.submission", submission_id=submission.id)}


@bp.route("/exercises/<slug>/submissions")
def my_submissions(slug: str):
    get_exercise(slug)
    rows = submissions_of(get_db(), g.participant, slug)
    listed = [
        {"id": row.id, "status": row.status, "error_kind": row.error_kind, "public_score": row.public_score}
        | {"created_at": iso_utc(row.created_at)}
        for row in rows
    ]
    return jsonify(submissions=listed)


@bp.route(f"/submissions/<int(max={MAX_SUBMISSION_ID}):submission_id>")
def submission(submission_id: int):
    return jsonify(as_json(visible_submission(submission_id)))


@bp.route(f"/submissions/<int(max={MAX_SUBMISSION_ID}):submission_id>/final", methods=["POST"])
def final(submission_id: int):
    """Mark one of your finished submissions as final (``{"final": true}``) or unmark it (``false``)."""
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # as in submitted_code
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("final"), bool):
        raise WorkshopError('Send JSON of the form {"final": true} or {"final": false}.')
    submission = set_final(get_db(), g.participant, visible_submission(submission_id), body["final"])
    return jsonify(as_json(submission))


@bp.route("/leaderboard/<slug>")
def leaderboard(slug: str):
    board = build_board(get_db(), get_exercise(slug), dataset=requested_dataset())
    return jsonify(board.as_json())
