"""Joining, logging in and out. Every other page needs a login (``server.access.load_user``)."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server import throttle
from server.access import load_user, safe_next
from server.db import get_db
from server.login_guard import client_address, dummy_hash, refused, settle, take_tickets
from server.models import EventSettings, Participant, utcnow
from server.participants_admin import code_matches, redeem_reset_code
from server.passwords import (
    check_password,
    check_shared_password,
    display_name_problem,
    hash_password,
    name_key,
    normalise_name,
    password_problem,
)

bp = Blueprint("auth", __name__)
bp.before_app_request(load_user)  # every other page needs a login


def event_settings() -> EventSettings:
    settings = get_db().get(EventSettings, 1)
    if settings is None:
        abort(503, "The workshop has not been initialised yet: run `workshop init`.")
    return settings


def start_session(role: str, participant: Participant | None = None) -> None:
    """A fresh session (never reuse one from before the login) that lasts the event."""
    session.clear()
    session.permanent = True
    session["role"] = role
    if participant is not None:
        session["participant_id"] = participant.id


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
    settings, form = event_settings(), request.form
    tickets = take_tickets(("address", client_address()))
    ok = check_shared_password(settings.event_password_hash, form.get("event_password", ""))
    settle(tickets, ok)
    if not ok:
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
    return redirect(safe_next(url_for("exercises.index")))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("auth/login.html")
    key = name_key(request.form.get("display_name", ""))
    tickets = take_tickets(("address", client_address()), ("name", key))
    if locked := refused(tickets):  # the same for names that do not exist: nothing tells them apart
        wait = throttle.wait_words(locked.retry_after)
        errors = [f"Too many wrong passwords for this name. Please wait {wait} and try again."]
        return render_template("auth/login.html", errors=errors), 429, {"Retry-After": str(locked.retry_after)}
    db = get_db()
    participant = db.scalar(select(Participant).where(Participant.name_key == key))
    password = request.form.get("password", "")
    ok = check_password(participant.password_hash if participant else dummy_hash(), password) and bool(participant)
    settle(tickets, ok)
    if not ok:
        return render_template("auth/login.html", errors=["Unknown name or wrong password."]), 400
    participant.last_login_at = utcnow()
    db.commit()
    start_session("participant", participant)
    return redirect(safe_next(url_for("exercises.index")))


@bp.route("/instructor/login", methods=["GET", "POST"])
def instructor_login():
    if request.method == "GET":
        return render_template("auth/instructor_login.html")
    settings, address = event_settings(), client_address()
    tickets = take_tickets(("address", address), ("instructor", address), ("instructor*", "*"))
    if locked := refused(tickets):
        wait = throttle.wait_words(locked.retry_after)
        errors = [f"Too many wrong instructor passwords. Please wait {wait} and try again."]
        headers = {"Retry-After": str(locked.retry_after)}
        return render_template("auth/instructor_login.html", errors=errors), 429, headers
    ok = check_password(settings.instructor_password_hash, request.form.get("password", ""))
    settle(tickets, ok)
    if not ok:
        return render_template("auth/instructor_login.html", errors=["Wrong instructor password."]), 400
    start_session("instructor")
    return redirect(safe_next(url_for("instructor.index")))


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    """Name + the instructor's one-time code + a new password; wrong codes are counted like wrong passwords."""
    if request.method == "GET":
        return render_template("auth/reset_password.html")
    form = request.form
    problems = [problem for problem in [password_problem(form.get("password", ""))] if problem]
    if form.get("password", "") != form.get("password_confirm", ""):
        problems.append("The two personal passwords do not match.")
    if problems:  # no code was tried: nothing is counted
        return render_template("auth/reset_password.html", errors=problems), 400
    key = name_key(form.get("display_name", ""))
    tickets = take_tickets(("address", client_address()), ("reset", key))
    if locked := refused(tickets):
        wait = throttle.wait_words(locked.retry_after)
        errors = [f"Too many wrong codes for this name. Please wait {wait} and try again."]
        return render_template("auth/reset_password.html", errors=errors), 429, {"Retry-After": str(locked.retry_after)}
    db = get_db()
    participant = db.scalar(select(Participant).where(Participant.name_key == key))
    ok = code_matches(participant, form.get("code", ""))
    settle(tickets, ok)
    if not ok:
        errors = ["Unknown name, or the code is wrong, used or expired. Ask the instructor for a new code."]
        return render_template("auth/reset_password.html", errors=errors), 400
    redeem_reset_code(db, participant, form["password"])
    flash("Your new password is set. Log in with it.")
    return redirect(url_for("auth.login"))


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
