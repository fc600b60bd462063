"""The event at a glance, for `workshop event status` and the instructor's page: every exercise's state, the
freeze, the announcement and the queue."""

from __future__ import annotations

from sqlalchemy import func, select

from server.datasets import active_dataset
from server.event import announcement, exercise_json, settings
from server.models import Submission, utcnow
from server.quotas import describe_seconds
from server.submissions import iso_utc


def event_status(db, exercises) -> dict:
    now = utcnow()
    row = settings(db)
    counts = dict(db.execute(select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all())
    freeze = row.freeze_at
    return {
        "now": iso_utc(now.replace(microsecond=0)),
        "dataset": active_dataset(db),
        "frozen": freeze is not None and freeze <= now,
        "freeze_at": iso_utc(freeze) if freeze else None,
        "announcement": announcement(db),
        "queued": counts.get("queued", 0),
        "running": counts.get("running", 0),
        "exercises": [exercise_json(db, exercise, None, now) for exercise in exercises],
    }


def format_status(status: dict) -> str:
    freeze = status["freeze_at"]
    lines = [
        f"now {status['now']}   data set {status['dataset']}   queued {status['queued']}   running {status['running']}",
        "board: " + (f"frozen since {freeze}" if status["frozen"] else f"freezes at {freeze}" if freeze else "live"),
        f"announcement: {status['announcement'] or '-'}",
        f"{'exercise':<22} {'open':<6} {'deadline':<28} {'quota':<16} revealed",
    ]
    for item in status["exercises"]:
        quota = item["quota"]
        quota_text = f"{quota['limit']} per {describe_seconds(quota['per_seconds'])}" if quota else "-"
        lines.append(
            f"{item['slug']:<22} {'yes' if item['open'] else 'no':<6} {item['deadline'] or '-':<28} "
            f"{quota_text:<16} {'yes' if item['revealed'] else 'no'}"
        )
    return "\n".join(lines)
