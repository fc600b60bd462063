"""The participant's notebook page: make a personal token and copy the snippet that submits from a notebook.

Making a token is post/redirect/get: the POST keeps the new token's plaintext in the session for the next GET
only (popped there), so reloading the page never makes another token and no longer shows this one.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from server.access import participant_required
from server.catalog import catalog
from server.db import get_db
from server.passwords import new_api_token

bp = Blueprint("account", __name__)

NEW_TOKEN = "new_notebook_token"  # noqa: S105 - the session key, not a secret


@bp.route("/account")
@participant_required
def show():
    token = session.pop(NEW_TOKEN, None)  # shown on this one page, then never again
    first = next(iter(catalog().values()), None)
    page = render_template(
        "account.html",
        token=token,
        has_token=g.participant.api_token_hash is not None,
        server_url=request.host_url.rstrip("/"),
        example_slug=first.slug if first else "cnn-from-scratch",
    )
    return page, {"Cache-Control": "no-store"}  # the token must not linger in any cache


@bp.route("/account/token", methods=["POST"])
@participant_required
def make_token():
    """A new token replaces the old one at once; the next GET of /account shows it, once."""
    token, stored = new_api_token()
    g.participant.api_token_hash = stored
    get_db().commit()
    session[NEW_TOKEN] = token
    response = redirect(url_for("account.show"), code=303)
    response.headers["Cache-Control"] = "no-store"
    return response
