"""The participant's notebook page: make a personal token and copy the snippet that submits from a notebook."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request

from server.access import participant_required
from server.catalog import catalog
from server.db import get_db
from server.passwords import new_api_token

bp = Blueprint("account", __name__)


def notebook_page(token: str | None = None):
    first = next(iter(catalog().values()), None)
    return render_template(
        "account.html",
        token=token,
        has_token=g.participant.api_token_hash is not None,
        server_url=request.host_url.rstrip("/"),
        example_slug=first.slug if first else "cnn-from-scratch",
    )


@bp.route("/account")
@participant_required
def show():
    return notebook_page()


@bp.route("/account/token", methods=["POST"])
@participant_required
def make_token():
    """A new token replaces the old one at once; it is shown on this one page and never again."""
    token, stored = new_api_token()
    g.participant.api_token_hash = stored
    get_db().commit()
    return notebook_page(token), {"Cache-Control": "no-store"}  # the token must not linger in any cache
