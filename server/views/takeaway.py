"""The participant's takeaway bundle: GET /takeaway downloads their own work as one zip (server/takeaway.py)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g

from server.access import participant_required
from server.db import get_db
from server.takeaway import bundle_name, takeaway_for

bp = Blueprint("takeaway", __name__)


@bp.route("/takeaway")
@participant_required
def download():
    """The logged-in participant's own bundle; nobody else's, whatever the request says."""
    bundle = takeaway_for(current_app, get_db(), g.participant)
    return Response(
        bundle,
        mimetype="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{bundle_name(g.participant)}.zip"',
            "Cache-Control": "private, no-store",
        },
    )
