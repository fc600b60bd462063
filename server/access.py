"""Who is asking and what they may use: the logged-in user (session or notebook token), the decorators the
blueprints share, and where a login may send the browser next."""

from __future__ import annotations

import functools
import unicodedata
from urllib.parse import unquote, urlsplit

from flask import abort, g, redirect, request, session, url_for
from sqlalchemy import select

from server import throttle
from server.db import get_db
from server.errors import WorkshopError, wants_json
from server.login_guard import client_address, refused, settle, take_tickets, too_many
from server.models import Participant
from server.passwords import api_token_hash

PUBLIC_ENDPOINTS = {"auth.join", "auth.login", "auth.instructor_login", "auth.reset_password", "static"}


def load_user():
    """Load the logged-in user into ``g``; send everybody else to the join page (instructor paths: their login).

    A newcomer has only the event password, so a logged-out visitor lands on *Join*, which links to *Log in*
    (carrying ``next=``) for returning participants.

    The JSON API under /api/ trusts only a notebook token, never the session cookie (so it needs no CSRF token).
    """
    if request.path.startswith("/worker-api/"):  # worker tokens only (server/views/worker_api.py)
        g.participant, g.is_instructor = None, False
        return None
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
        landing = "auth.instructor_login" if request.path.startswith("/instructor") else "auth.join"
        target = request.full_path.rstrip("?")
        return redirect(url_for(landing, next=target) if target != "/" else url_for(landing))
    return None


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
