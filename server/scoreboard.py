"""Leaderboards: the public board (per data set, frozen when the event is), the private board after the reveal.

Public: each participant's best public score among finished jobs on the board's data set; ties go to whoever
reached it first. Frozen: only jobs finished by the freeze time count. Private (Kaggle's meaning): each
participant's final selection (up to two marked submissions; none marked: their two best public ones) is
ranked by its best private score, and each row says how far it moved against the public rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Participant, Submission
from server.submissions import iso_utc

MAX_FINAL = 2


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


@dataclass(frozen=True)
class PrivateStanding:
    private_rank: int
    public_rank: int | None
    participant_id: int
    display_name: str
    public_score: float
    private_score: float
    final_ids: tuple[int, ...]

    @property
    def rank_change(self) -> int:
        """Places gained against the public board (positive: moved up)."""
        return 0 if self.public_rank is None else self.public_rank - self.private_rank


def _ranked(items: list, score) -> list[tuple[int, object]]:
    """(rank, item) for items sorted best first; equal scores share a rank."""
    ranked, previous, rank = [], None, 0
    for position, item in enumerate(items, start=1):
        if score(item) != previous:
            rank, previous = position, score(item)
        ranked.append((rank, item))
    return ranked


def standings(db: Session, exercise_slug: str, dataset: str | None = None, until: datetime | None = None):
    """The public board: ranked by best public score on ``dataset`` (all data sets when None).

    ``until``: the freeze time; jobs finished after it, and submissions made after it, do not count.
    """
    where = [Submission.exercise_slug == exercise_slug]
    if dataset is not None:
        where.append(Submission.dataset == dataset)
    counted = [*where, Submission.status != "cancelled"]
    if until is not None:
        counted.append(Submission.created_at <= until)
    counts = dict(
        db.execute(
            select(Submission.participant_id, func.count(Submission.id))
            .where(*counted)
            .group_by(Submission.participant_id)
        ).all()
    )
    scored = select(Submission, Participant.display_name).join(Participant).where(*where)
    scored = scored.where(Participant.hidden.is_(False), Participant.disqualified_reason.is_(None))  # moderation
    scored = scored.where(Submission.status == "done", Submission.public_score.is_not(None))
    if until is not None:
        scored = scored.where(Submission.finished_at <= until)
    best: dict[int, tuple[Submission, str]] = {}
    for submission, name in db.execute(
        scored.order_by(Submission.public_score.desc(), Submission.finished_at, Submission.id)
    ).all():
        best.setdefault(submission.participant_id, (submission, name))
    return [
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
        for rank, (submission, name) in _ranked(list(best.values()), lambda pair: pair[0].public_score)
    ]


def final_selection(db: Session, participant_id: int, slug: str, dataset: str | None) -> list[Submission]:
    """The submissions that count for the private board: those marked final, else the two best public ones."""
    where = [
        Submission.participant_id == participant_id,
        Submission.exercise_slug == slug,
        Submission.status == "done",
        Submission.public_score.is_not(None),
    ]
    if dataset is not None:
        where.append(Submission.dataset == dataset)
    best_first = select(Submission).where(*where).order_by(Submission.public_score.desc(), Submission.id)
    marked = db.scalars(best_first.where(Submission.final.is_(True)).limit(MAX_FINAL)).all()
    return list(marked) or list(db.scalars(best_first.limit(MAX_FINAL)).all())


def private_standings(db: Session, slug: str, dataset: str | None) -> list[PrivateStanding]:
    """The private board: each participant's final selection ranked by its best private score."""
    public = {row.participant_id: row for row in standings(db, slug, dataset)}
    rows = []
    for participant_id, standing in public.items():
        chosen = [s for s in final_selection(db, participant_id, slug, dataset) if s.private_score is not None]
        if not chosen:
            continue
        best = max(chosen, key=lambda s: (s.private_score, -s.id))
        rows.append((best.private_score, best.public_score, standing, tuple(s.id for s in chosen)))
    rows.sort(key=lambda row: (-row[0], row[2].rank, row[2].best_at))
    return [
        PrivateStanding(
            private_rank=rank,
            public_rank=standing.rank,
            participant_id=standing.participant_id,
            display_name=standing.display_name,
            public_score=standing.public_score,
            private_score=private,
            final_ids=final_ids,
        )
        for rank, (private, _public, standing, final_ids) in _ranked(rows, lambda row: row[0])
    ]


def public_rows(rows: list[Standing], include_private: bool = False) -> list[dict]:
    return [
        {
            "rank": row.rank,
            "display_name": row.display_name,
            "public_score": row.public_score,
            "submissions": row.submissions,
            "best_at": iso_utc(row.best_at),
            **({"private_score": row.private_score} if include_private else {}),
        }
        for row in rows
    ]


def private_rows(rows: list[PrivateStanding]) -> list[dict]:
    return [
        {
            "rank": row.public_rank,
            "display_name": row.display_name,
            "public_score": row.public_score,
            "private_score": row.private_score,
            "private_rank": row.private_rank,
            "rank_change": row.rank_change,
        }
        for row in rows
    ]
