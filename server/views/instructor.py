"""The instructor's overview: participants, the queue, recent submissions."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from server.db import get_db
from server.jobs import active_dataset
from server.models import Participant, Submission
from server.views.auth import instructor_required

bp = Blueprint("instructor", __name__, url_prefix="/instructor")


@bp.route("/")
@instructor_required
def index():
    db = get_db()
    counts = dict(db.execute(select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all())
    recent = db.execute(
        select(Submission, Participant.display_name).join(Participant).order_by(Submission.id.desc()).limit(50)
    ).all()
    participants = db.scalar(select(func.count(Participant.id)))
    return render_template(
        "instructor/index.html",
        counts=counts,
        recent=recent,
        participants=participants,
        dataset=active_dataset(db),
    )
