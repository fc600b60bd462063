"""The instructor's workers page: every worker slot, where it runs, and how it is doing; and the warnings
block that the instructor's pages show (server/warnings.py decides what it says)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from sqlalchemy import select

from server.access import instructor_required
from server.db import get_db
from server.models import WorkerSlot, utcnow
from server.warnings import ALIVE_SECONDS, instructor_warnings, sandbox_summary

bp = Blueprint("workers", __name__, url_prefix="/instructor/workers")

MAX_SLOTS_LISTED = 500
URGENCY = {"dead": 0, "paused": 1, "busy": 2, "idle": 3, "stopped": 4}


def slot_host(name: str) -> str:
    """The host of a slot named host:pid:slot-N (a host name may hold colons itself, e.g. an IPv6 address)."""
    parts = name.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else name


def slot_rows(db) -> list[dict]:
    """Every slot that ever reported, dead and paused first, then the most recently heard."""
    now = utcnow()
    slots = db.scalars(select(WorkerSlot).order_by(WorkerSlot.heartbeat_at.desc()).limit(MAX_SLOTS_LISTED)).all()
    rows = []
    for slot in slots:
        since = max(0, int((now - slot.heartbeat_at).total_seconds()))
        silent = since > ALIVE_SECONDS and slot.state in ("idle", "busy", "paused")
        rows.append({"slot": slot, "host": slot_host(slot.name), "since": since, "silent": silent})
    return sorted(rows, key=lambda row: (row["silent"], URGENCY.get(row["slot"].state, 5)))


@bp.route("")
@instructor_required
def index():
    return render_template(
        "instructor/workers.html",
        rows=slot_rows(get_db()),
        alive_seconds=ALIVE_SECONDS,
        sandbox=sandbox_summary(current_app),
    )


@bp.app_context_processor
def warnings_for_instructors():
    """``page_warnings()`` in every template: the warnings on an instructor's page, nothing anywhere else."""

    def page_warnings():
        if not getattr(g, "is_instructor", False) or not request.path.startswith("/instructor"):
            return []
        return instructor_warnings(current_app, get_db())

    return {"page_warnings": page_warnings}
