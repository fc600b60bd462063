"""The JSON API for notebooks: list exercises, submit code, follow a submission, read a leaderboard.

Requests authenticate with the participant's personal notebook token (``Authorization: Bearer ...``,
made on /account) and never with the session cookie, so a page on another site cannot make a logged-in
browser submit: no CSRF token is needed here because no cookie is trusted here.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import Blueprint, g, jsonify, request, url_for
from sqlalchemy import select

from server.db import get_db
from server.errors import WorkshopError
from server.executor_runtime import notify_executor
from server.jobs import catalog, get_exercise, queue_submission
from server.models import Participant, Submission
from server.views.leaderboard import leaderboard_rows
from server.views.submissions import as_json, visible_submission

bp = Blueprint("api", __name__, url_prefix="/api")
TOKEN_PREFIX = "ws_"  # noqa: S105 - a marker that makes leaked tokens easy to spot, not a secret


class Unauthorized(WorkshopError):
    status = 401
    code = "unauthorized"


def new_token() -> tuple[str, str]:
    """A fresh notebook token and the hash that is stored (the token itself is shown once, never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def participant_from_token() -> Participant:
    """The participant whose token the request carries; a wrong token counts as a failed login."""
    from server.views.auth import check_rate_limit, record_failure

    token = bearer_token()
    if token is None:
        raise Unauthorized(
            "Send your notebook token as 'Authorization: Bearer <token>'. Make one on the Notebook page (/account)."
        )
    check_rate_limit()
    participant = get_db().scalar(select(Participant).where(Participant.api_token_hash == token_hash(token)))
    if participant is None:
        record_failure()
        raise Unauthorized("This notebook token is not valid (a newer one replaces it). Make a new one on /account.")
    return participant


def submitted_code() -> tuple[bytes | str, str | None]:
    """The code of a submission: JSON ``{"code": ...}``, a multipart ``file``, or the raw body."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("code"), str):
            raise WorkshopError('Send JSON of the form {"code": "def train(data): ..."}.')
        filename = body.get("filename")
        return body["code"], filename[-255:] if isinstance(filename, str) else None
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        if not upload.filename.endswith(".py"):
            raise WorkshopError("Upload a Python file ending in .py.")
        return upload.read(), upload.filename[-255:]
    return request.get_data(), None


@bp.route("/exercises")
def exercises():
    rows = [
        {"slug": item.slug, "title": item.title, "image_size": item.image_size, "time_limit": item.time_limit}
        for item in catalog().values()
    ]
    return jsonify(exercises=rows)


@bp.route("/exercises/<slug>/submissions", methods=["POST"])
def submit(slug: str):
    exercise = get_exercise(slug)
    code, filename = submitted_code()
    submission = queue_submission(get_db(), g.participant, exercise, code, filename)
    notify_executor()
    body = {**as_json(submission), "url": url_for("submissions.show", submission_id=submission.id, _external=True)}
    return jsonify(body), 201, {"Location": url_for("api.submission", submission_id=submission.id)}


@bp.route("/exercises/<slug>/submissions")
def my_submissions(slug: str):
    get_exercise(slug)
    rows = get_db().scalars(
        select(Submission)
        .where(Submission.participant_id == g.participant.id, Submission.exercise_slug == slug)
        .order_by(Submission.id.desc())
        .limit(50)
    )
    listed = [
        {"id": row.id, "status": row.status, "error_kind": row.error_kind, "public_score": row.public_score}
        | {"created_at": row.created_at.isoformat() + "Z"}
        for row in rows
    ]
    return jsonify(submissions=listed)


@bp.route("/submissions/<int:submission_id>")
def submission(submission_id: int):
    return jsonify(as_json(visible_submission(submission_id)))


@bp.route("/leaderboard/<slug>")
def leaderboard(slug: str):
    get_exercise(slug)
    return jsonify(exercise=slug, rows=leaderboard_rows(slug, include_private=False))
