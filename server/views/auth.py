"""Joining, logging in and out. Every other page needs a login (see ``require_login``)."""

from __future__ import annotations

import functools
from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from server.db import get_db
from server.errors import TooManyRequests, WorkshopError, wants_json
from server.models import EventSettings, LoginFailure, Participant, utcnow
from server.passwords import (
    api_token_hash,
    check_password,
    display_name_problem,
    hash_password,
    name_key,
    normalise_name,
    password_problem,
)

bp = Blueprint("auth", __name__)
PUBLIC_ENDPOINTS = {"auth.join", "auth.login", "auth.instructor_login", "static"}


def event_settings() -> EventSettings:
    settings = get_db().get(EventSettings, 1)
    if settings is None:
        abort(503, "The workshop has not been initialised yet: run `workshop init`.")
    return settings


@bp.before_app_request
def require_login():
    """Load the logged-in user into ``g``; send everybody else to the login page.

    The JSON API under /api/ trusts only a notebook token, never the session cookie (so it needs no CSRF token).
    """
    if request.path.startswith("/api/"):
        g.participant, g.is_instructor = participant_from_token(), False
        return None
    g.participant, g.is_instructor = None, session.get("role") == "instructor"
    if session.get("role") == "participant":
        g.participant = get_db().get(Participant, session.get("participant_id"))
        if g.participant is None:
            session.clear()
    if g.participant is None and not g.is_instructor and request.endpoint not in PUBLIC_ENDPOINTS:
        if wants_json():
            abort(401, "Log in first.")
        return redirect(url_for("auth.login", next=request.path))
    return None


def instructor_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if not g.is_instructor:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def participant_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.participant is None:
            abort(403, "Only participants can do this; log in with your display name.")
        return view(*args, **kwargs)

    return wrapped


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def check_rate_limit() -> None:
    """Refuse further logins from an address with too many recent failures."""
    window = timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"])
    since = utcnow() - window
    failures = get_db().scalar(
        select(func.count(LoginFailure.id)).where(
            LoginFailure.address == client_address(), LoginFailure.created_at >= since
        )
    )
    if failures >= current_app.config["LOGIN_FAILURE_LIMIT"]:
        minutes = max(1, int(window.total_seconds() // 60))
        raise TooManyRequests(f"Too many failed logins from your address. Please wait {minutes} minutes and try again.")


def record_failure() -> None:
    db = get_db()
    cutoff = utcnow() - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"])
    db.execute(delete(LoginFailure).where(LoginFailure.created_at < cutoff))
    db.add(LoginFailure(address=client_address()))
    db.commit()


class Unauthorized(WorkshopError):
    status = 401
    code = "unauthorized"


def bearer_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def participant_from_token() -> Participant:
    """The participant whose notebook token the request carries; a wrong token counts as a failed login."""
    token = bearer_token()
    if token is None:
        raise Unauthorized(
            "Send your notebook token as 'Authorization: Bearer <token>'. Make one on the Notebook page (/account)."
        )
    check_rate_limit()
    participant = get_db().scalar(select(Participant).where(Participant.api_token_hash == api_token_hash(token)))
    if participant is None:
        record_failure()
        raise Unauthorized("This notebook token is not valid (a newer one replaces it). Make a new one on /account.")
    return participant


def start_session(role: str, participant: Participant | None = None) -> None:
    """A fresh session (never reuse one from before the login) that lasts the event."""
    session.clear()
    session.permanent = True
    session["role"] = role
    if participant is not None:
        session["participant_id"] = participant.id


def safe_next(default: str) -> str:
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else default


def join_problems(form) -> list[str]:
    name = normalise_name(form.get("display_name", ""))
    password = form.get("password", "")
    problems = [problem for problem in (display_name_problem(name), password_problem(password)) if problem]
    if password != form.get("password_confirm", ""):
        problems.append("The two personal passwords do not match.")
    return problems


@bp.route("/join", methods=["GET", "POST"])
def join():
    if request.method == "GET":
        return render_template("auth/join.html")
    check_rate_limit()
    form = request.form
    if not check_password(event_settings().event_password_hash, form.get("event_password", "")):
        record_failure()
        return render_template("auth/join.html", errors=["The event password is not right."]), 400
    problems = join_problems(form)
    if problems:
        return render_template("auth/join.html", errors=problems), 400
    name = normalise_name(form["display_name"])
    db = get_db()
    participant = Participant(display_name=name, name_key=name_key(name), password_hash=hash_password(form["password"]))
    db.add(participant)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        message = f"The name “{name}” is taken. Pick another, or log in if it is yours."
        return render_template("auth/join.html", errors=[message]), 400
    start_session("participant", participant)
    flash(f"Welcome, {name}! Remember your personal password to log in again.")
    return redirect(url_for("exercises.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html")
    check_rate_limit()
    db = get_db()
    participant = db.scalar(
        select(Participant).where(Participant.name_key == name_key(request.form.get("display_name", "")))
    )
    password = request.form.get("password", "")
    if participant is None or not check_password(participant.password_hash, password):
        record_failure()
        return render_template("auth/login.html", errors=["Unknown name or wrong password."]), 400
    participant.last_login_at = utcnow()
    db.commit()
    start_session("participant", participant)
    return redirect(safe_next(url_for("exercises.index")))


@bp.route("/instructor/login", methods=["GET", "POST"])
def instructor_login():
    if request.method == "GET":
        return render_template("auth/instructor_login.html")
    check_rate_limit()
    if not check_password(event_settings().instructor_password_hash, request.form.get("password", "")):
        record_failure()
        return render_template("auth/instructor_login.html", errors=["Wrong instructor password."]), 400
    start_session("instructor")
    return redirect(safe_next(url_for("instructor.index")))


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
