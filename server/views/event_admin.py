"""The instructor's event controls (/instructor/event): open and close, deadlines, quotas and grants, the freeze,
the reveal, the announcement. Every action is a POST with CSRF that calls server.event, flashes what changed and
redirects back; bad input answers 400 on the same page and changes nothing."""

from __future__ import annotations

import functools

from flask import Blueprint, flash, redirect, render_template, request, url_for

from grader.exercises import Quota, parse_duration
from server.access import instructor_required
from server.catalog import catalog, get_exercise
from server.db import get_db
from server.errors import WorkshopError
from server.event import (
    announce,
    freeze,
    grant_quota,
    hide,
    parse_when,
    reveal,
    set_deadline,
    set_open,
    set_quota,
    unfreeze,
)
from server.event_status import event_status
from server.quotas import describe_seconds

bp = Blueprint("event_admin", __name__, url_prefix="/instructor/event")


@bp.route("/")
@instructor_required
def index():
    return _page()


def _page(errors: list[str] | None = None, status: int = 200):
    status_json = event_status(get_db(), list(catalog().values()))
    titles = {slug: exercise.title for slug, exercise in catalog().items()}
    page = render_template(
        "instructor/event.html",
        status=status_json,
        titles=titles,
        describe_seconds=describe_seconds,
        errors=errors or [],
        form=request.form if errors else {},
    )
    return page, status


def action(view):
    """An instructor-only POST: its message is flashed; a WorkshopError or ValueError re-shows the page (400)."""

    @functools.wraps(view)
    @instructor_required
    def wrapped(*args, **kwargs):
        try:
            message = view(*args, **kwargs)
        except (WorkshopError, ValueError, OverflowError) as error:
            get_db().rollback()
            status = error.status if isinstance(error, WorkshopError) and error.status != 404 else 400
            return _page([getattr(error, "message", None) or str(error)], status)
        flash(message)
        return redirect(url_for("event_admin.index"))

    return wrapped


def _exercise():
    slug = request.form.get("slug", "")
    if slug not in catalog():
        raise WorkshopError(f"There is no exercise called {slug!r}.")
    return get_exercise(slug)


def _when(field: str = "when"):
    text = request.form.get(field, "").strip()
    if not text:
        raise WorkshopError("Give a time: pick a date and time, or write +30m or 15:30.")
    offset_text = request.form.get("utc_offset", "").strip()
    try:
        offset = int(offset_text) if offset_text else None
    except ValueError:
        raise WorkshopError(f"{offset_text!r} is not a UTC offset in minutes.") from None
    if offset is not None and not -16 * 60 <= offset <= 16 * 60:
        raise WorkshopError(f"{offset} minutes is not a UTC offset.")
    return parse_when(text, None, offset)


@bp.route("/open", methods=["POST"])
@action
def open_close():
    is_open = request.form.get("open") == "1"
    everything = request.form.get("slug") == "*"
    exercises = list(catalog().values()) if everything else [_exercise()]
    set_open(get_db(), exercises, is_open)
    which = "All exercises" if everything else exercises[0].title
    return f"{which}: submissions {'open' if is_open else 'closed'}."


@bp.route("/deadline", methods=["POST"])
@action
def deadline():
    exercise = _exercise()
    if request.form.get("clear"):
        set_deadline(get_db(), exercise, None)
        return f"{exercise.title}: no deadline."
    moment = _when()
    set_deadline(get_db(), exercise, moment)
    return f"{exercise.title}: deadline {moment:%Y-%m-%d %H:%M} UTC."


@bp.route("/quota", methods=["POST"])
@action
def quota():
    exercise = _exercise()
    mode = request.form.get("mode", "set")
    if mode == "none":
        set_quota(get_db(), exercise, None)
        return f"{exercise.title}: no limit on submissions."
    if mode == "default":
        set_quota(get_db(), exercise, None, back_to_default=True)
        return f"{exercise.title}: the quota of exercise.toml again."
    count_text = request.form.get("count", "").strip()
    if not count_text.isdigit():
        raise WorkshopError(f"The number of submissions must be a whole number, not {count_text!r}.")
    limit = Quota.parse({"count": int(count_text), "per": parse_duration(request.form.get("per", "1h"))})
    set_quota(get_db(), exercise, limit)
    return f"{exercise.title}: at most {limit.count} submissions per {describe_seconds(limit.per_seconds)}."


@bp.route("/grant", methods=["POST"])
@action
def grant():
    exercise = _exercise()
    extra_text = request.form.get("extra", "").strip()
    if not extra_text.isdigit():
        raise WorkshopError(f"The extra submissions must be a whole number, not {extra_text!r}.")
    participant = grant_quota(get_db(), request.form.get("display_name", ""), exercise, int(extra_text))
    return f"{participant.display_name} gets {int(extra_text)} extra submissions in {exercise.title}."


@bp.route("/reveal", methods=["POST"])
@action
def reveal_or_hide():
    exercise = _exercise()
    if request.form.get("reveal") == "1":
        reveal(get_db(), exercise)
        return f"{exercise.title}: the private board is revealed to everybody."
    hide(get_db(), exercise)
    return f"{exercise.title}: the private board is hidden again."


@bp.route("/freeze", methods=["POST"])
@action
def freeze_board():
    what = request.form.get("what")
    if what == "unfreeze":
        unfreeze(get_db())
        return "The boards are live again."
    if what == "at":
        moment = freeze(get_db(), _when())
        return f"The boards freeze at {moment:%Y-%m-%d %H:%M} UTC."
    if what == "now":
        moment = freeze(get_db())
        return f"The boards are frozen since {moment:%H:%M:%S} UTC."
    raise WorkshopError("Choose freeze now, freeze at a time, or unfreeze.")


@bp.route("/announcement", methods=["POST"])
@action
def announcement():
    text = None if request.form.get("clear") else request.form.get("text", "")
    shown = announce(get_db(), text)
    return f"Announcement: {shown}" if shown else "The announcement is cleared."
