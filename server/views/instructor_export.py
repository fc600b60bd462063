"""The instructor's export page: the event's results (CSV and code) as one zip; backups stay on the command line."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_file
from sqlalchemy import func, select

from server.access import instructor_required
from server.backup import export_zip, last_backup
from server.catalog import catalog
from server.db import get_db
from server.models import Participant, Submission, utcnow

bp = Blueprint("instructor_export", __name__, url_prefix="/instructor")


@bp.route("/export")
@instructor_required
def index():
    db = get_db()
    return render_template(
        "instructor/export.html",
        participants=db.scalar(select(func.count(Participant.id))),
        submissions=db.scalar(select(func.count(Submission.id))),
        last_backup=last_backup(current_app),
    )


@bp.route("/export.zip")
@instructor_required
def download():
    """participants.csv, submissions.csv, code/<id>.py and the leaderboards (with private scores), zipped."""
    archive = export_zip(get_db(), list(catalog()))
    response = send_file(
        archive,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"workshop-export-{utcnow():%Y%m%d-%H%M}.zip",
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
