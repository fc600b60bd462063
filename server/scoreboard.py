"""Leaderboard queries: best public score per participant, rank, number of submissions, time of the best."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Participant, Submission
from server.submissions import iso_utc


@dataclass(frozen=True)
class Standing:
    rank: int
    participant_id: int
    display_name: str
    public_score: float
    private_score: float | None
    submissions: int
    best_at: datetime
    best_submission_id: int


def standings(db: Session, exercise_slug: str) -> list[Standing]:
    """Ranked by best public score; ties go to whoever reached it first."""
    counts = dict(
        db.execute(
            select(Submission.participant_id, func.count(Submission.id))
            .where(Submission.exercise_slug == exercise_slug, Submission.status != "cancelled")
            .group_by(Submission.participant_id)
        ).all()
    )
    scored = db.execute(
        select(Submission, Participant.display_name)
        .join(Participant)
        .where(Submission.exercise_slug == exercise_slug, Submission.status == "done")
        .where(Submission.public_score.is_not(None))
        .order_by(Submission.public_score.desc(), Submission.finished_at, Submission.id)
    ).all()
    best: dict[int, tuple[Submission, str]] = {}
    for submission, name in scored:
        best.setdefault(submission.participant_id, (submission, name))
    rows, previous_score, rank = [], None, 0
    for position, (submission, name) in enumerate(best.values(), start=1):
        if submission.public_score != previous_score:
            rank, previous_score = position, submission.public_score
        rows.append(
            Standing(
                rank=rank,
                participant_id=submission.participant_id,
                display_name=name,
                public_score=submission.public_score,
                private_score=submission.private_score,
                submissions=counts.get(submission.participant_id, 0),
                best_at=submission.finished_at or submission.created_at,
                best_submission_id=submission.id,
            )
        )
    return rows


def leaderboard_rows(db: Session, slug: str, include_private: bool) -> list[dict]:
    """The standings as JSON rows; private scores only for the instructor."""
    return [
        {
            "rank": row.rank,
            "display_name": row.display_name,
            "public_score": row.public_score,
            "submissions": row.submissions,
            "best_at": iso_utc(row.best_at),
            **({"private_score": row.private_score} if include_private else {}),
        }
        for row in standings(db, slug)
    ]
