"""`workshop export`: participants, submissions (with code) and leaderboards as files, after the event."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.data.layout import write_csv
from server.models import Participant, Submission
from server.scoreboard import standings

SUBMISSION_COLUMNS = (
    "id",
    "participant",
    "exercise_slug",
    "dataset",
    "status",
    "error_kind",
    "public_score",
    "private_score",
    "seconds",
    "created_at",
    "finished_at",
)


def export_event(db: Session, exercise_slugs: list[str], out: Path) -> dict[str, int]:
    """Write participants.csv, submissions.csv, code/<id>.py and leaderboard-<slug>.csv (with private scores)."""
    (out / "code").mkdir(parents=True, exist_ok=True)
    participants = list(db.scalars(select(Participant).order_by(Participant.id)))
    names = {participant.id: participant.display_name for participant in participants}
    write_csv(
        out / "participants.csv",
        ("id", "display_name", "joined_at", "hidden", "disqualified_reason"),
        [
            (p.id, p.display_name, p.created_at.isoformat(), int(bool(p.hidden)), p.disqualified_reason or "")
            for p in participants
        ],
    )
    submissions = list(db.scalars(select(Submission).order_by(Submission.id)))
    rows = []
    for submission in submissions:
        (out / "code" / f"{submission.id}.py").write_text(submission.code, encoding="utf-8")
        values = {column: getattr(submission, column, None) for column in SUBMISSION_COLUMNS}
        values["participant"] = names.get(submission.participant_id, "")
        rows.append([_plain(values[column]) for column in SUBMISSION_COLUMNS])
    write_csv(out / "submissions.csv", SUBMISSION_COLUMNS, rows)
    for slug in exercise_slugs:
        board = [
            (row.rank, row.display_name, row.public_score, row.private_score, row.submissions, row.best_at.isoformat())
            for row in standings(db, slug)
        ]
        header = ("rank", "display_name", "public_score", "private_score", "submissions", "best_at")
        write_csv(out / f"leaderboard-{slug}.csv", header, board)
    counts = {"participants": len(participants), "submissions": len(submissions), "leaderboards": len(exercise_slugs)}
    (out / "export.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    return counts


def _plain(value: object) -> object:
    return value.isoformat() if hasattr(value, "isoformat") else ("" if value is None else value)
