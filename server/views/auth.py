"""Joining, logging in and out. Every other page needs a login (see ``require_login``)."""

from __future__ import annotations

import functools
import ipaddress
import unicodedata
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from server import throttle
from server.db import get_db
from server.errors import WorkshopError, error_response, wants_json
from server.models import EventSettings, Participant, utcnow
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
        public = request.endpoint == "api.openapi"  # the API's description needs no token
        g.participant, g.is_instructor = (None if public else participant_from_token()), False
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


def client_address() -> str:
    """The client's address (the real one behind WORKSHOP_TRUSTED_PROXIES proxies); IPv6 counts per /64."""
    address = (request.remote_addr or "unknown")[:64]
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def too_many(message: str, retry_after: int):
    """Stop the request with 429, the message and a Retry-After header."""
    response = make_response(error_response(429, "too_many_requests", message))
    response.headers["Retry-After"] = str(retry_after)
    abort(response)


def take_tickets(*keys: tuple[str, str]) -> list[throttle.Ticket]:
    """Count this attempt for each key before any password is checked; the flood guard refuses with 429.

    Returns the tickets; on a refusal the tickets taken so far are given back and the refused one is last.
    """
    tickets: list[throttle.Ticket] = []
    for scope, key in keys:
        ticket = throttle.take(scope, key)
        tickets.append(ticket)
        if not ticket.allowed:
            for taken in tickets[:-1] if ticket.locked_until else tickets:
                throttle.succeeded(taken, reset=False)  # no password was tried: give the tickets back
            if scope == "address":
                wait = throttle.wait_words(ticket.retry_after)
                message = f"Too many failed logins from your address. Please wait {wait} and try again."
                too_many(message, ticket.retry_after)
            break
    return tickets


def refused(tickets: list[throttle.Ticket]) -> throttle.Ticket | None:
    return None if tickets[-1].allowed else tickets[-1]


def settle(tickets: list[throttle.Ticket], ok: bool) -> None:
    """A wrong password keeps every ticket; a right one forgets the key's failures, and gives the address's back."""
    for ticket in tickets:
        if ok:
            throttle.succeeded(ticket, reset=ticket.scope != "address")
        else:
            throttle.failed(ticket)


@functools.cache
def dummy_hash() -> str:
    """Checked for unknown names, so that a wrong name takes as long as a wrong password."""
    return hash_password("no participant has this password")


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
    participant = get_db().scalar(select(Participant).where(Participant.api_token_hash == api_token_hash(token)))
    if participant is None:
        # only wrong tokens are counted (per address, apart from passwords): a valid one always works
        tickets = take_tickets(("token", client_address()))
        if refused(tickets):
            wait = throttle.wait_words(tickets[-1].retry_after)
            message = f"Too many wrong notebook tokens from your address. Please wait {wait} and try again."
            too_many(message, tickets[-1].retry_after)
        settle(tickets, ok=False)
        raise Unauthorized("This notebook token is not valid (a newer one replaces it). Make a new one on /account.")
    return participant


def start_session(role: str, participant: Participant | None = None) -> None:
    """A fresh session (never reuse one from before the login) that lasts the event."""
    session.clear()
    session.permanent = True
    session["role"] = role
    if participant is not None:
        session["participant_id"] = participant.id


def strip_invisible(text: str) -> str:
    """Drop white space and control/format characters, which browsers and URL parsers skip inside URLs."""
    return "".join(char for char in text if not char.isspace() and unicodedata.category(char)[0] != "C")


def safe_next(default: str) -> str:
    """The ``next=`` target if it is a path on this site, else ``default``: never another host or a scheme."""
    target = strip_invisible(request.args.get("next", ""))
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    decoded = target
    for _ in range(3):  # also percent-encoded, up to thrice: /%2F%2Fevil.com, /%5Cevil.com, /%252F...
        decoded = strip_invisible(unquote(decoded))
        if decoded.startswith("//") or "\\" in decoded or urlsplit(decoded).netloc:
            return default
    return target


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
    ok = check_password(settings.event_password_hash, form.get("event_password", ""))
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
    return redirect(url_for("exercises.index"))


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


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
