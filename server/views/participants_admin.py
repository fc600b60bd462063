"""The instructor's participants page (/instructor/participants): everyone with their figures, searchable, and the
actions of server/participants_admin.py. Each action is a POST with CSRF that flashes what changed and redirects
back; bad input answers 400 on the page and changes nothing; delete first shows a confirmation step."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from server.access import instructor_required
from server.db import get_db
from server.errors import WorkshopError
from server.models import Participant, Submission
from server.participants_admin import (
    RESET_CODE_HOURS,
    delete_participant,
    disqualify,
    hide,
    name_history,
    new_reset_code,
    participant_rows,
    rename,
    restore,
)

bp = Blueprint("participants_admin", __name__, url_prefix="/instructor/participants")


@bp.route("/")
@instructor_required
def index():
    """The list; ``?delete=ID`` adds the confirmation step for deleting that participant."""
    doomed = request.args.get("delete", type=int)
    participant = get_db().get(Participant, doomed) if doomed is not None else None
    return _page(confirm_delete=_delete_question(participant) if participant else None)


def _delete_question(participant: Participant) -> dict:
    db = get_db()
    submissions = db.scalar(select(func.count(Submission.id)).where(Submission.participant_id == participant.id))
    return {"participant": participant, "submissions": submissions, "history": name_history(db, participant.id)}


def _page(errors: list[str] | None = None, status: int = 200, **extra):
    query = request.args.get("q", "")[:64]
    rows = participant_rows(get_db(), query)
    slugs = sorted({slug for row in rows for slug in row.best})
    page = render_template(
        "instructor/participants.html", rows=rows, slugs=slugs, q=query, errors=errors or [], **extra
    )
    return page, status


def _participant(participant_id: int) -> Participant:
    participant = get_db().get(Participant, participant_id)
    if participant is None:
        raise WorkshopError("This participant no longer exists.")
    return participant


def _act(participant_id: int, action):
    """Run ``action(db, participant)``; its message is flashed; a WorkshopError re-shows the page with 400."""
    db = get_db()
    try:
        message = action(db, _participant(participant_id))
    except WorkshopError as error:
        db.rollback()
        return _page([error.message], 400)
    flash(message)
    return redirect(url_for("participants_admin.index", q=request.args.get("q") or None))


@bp.route("/<int:participant_id>/rename", methods=["POST"])
@instructor_required
def rename_participant(participant_id: int):
    def action(db, participant):
        change = rename(db, participant, request.form.get("new_name", ""))
        return f"Renamed {change.old_name} to {change.new_name}."

    return _act(participant_id, action)


@bp.route("/<int:participant_id>/reset-password", methods=["POST"])
@instructor_required
def reset_password(participant_id: int):
    """The code is shown on this one answer only (never stored, never flashed into the session cookie)."""
    db = get_db()
    try:
        participant = _participant(participant_id)
    except WorkshopError as error:
        return _page([error.message], 400)
    code = new_reset_code(db, participant)
    page, status = _page(reset_code=code, reset_name=participant.display_name, reset_hours=RESET_CODE_HOURS)
    return page, status, {"Cache-Control": "no-store"}


@bp.route("/<int:participant_id>/hide", methods=["POST"])
@instructor_required
def hide_participant(participant_id: int):
    return _act(participant_id, hide)


@bp.route("/<int:participant_id>/disqualify", methods=["POST"])
@instructor_required
def disqualify_participant(participant_id: int):
    return _act(participant_id, lambda db, participant: disqualify(db, participant, request.form.get("reason", "")))


@bp.route("/<int:participant_id>/restore", methods=["POST"])
@instructor_required
def restore_participant(participant_id: int):
    return _act(participant_id, restore)


@bp.route("/<int:participant_id>/delete", methods=["POST"])
@instructor_required
def delete(participant_id: int):
    """Delete, with confirm=yes (the form of the confirmation step, ``?delete=ID``); without it, ask again (400)."""
    if request.form.get("confirm") != "yes":
        participant = get_db().get(Participant, participant_id)
        if participant is None:
            return _page(["This participant no longer exists."], 400)
        return _page(status=400, confirm_delete=_delete_question(participant))
    return _act(participant_id, delete_participant)
