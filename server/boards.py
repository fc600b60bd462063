"""One exercise's board as a viewer sees it: which data set, frozen or live, public or revealed.

Participants, the JSON API and the projector see the public view: frozen at the freeze time, and private
figures only after the exercise's reveal. The instructor sees the live board, with private scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import request
from sqlalchemy import func, select

from grader.exercises import Exercise
from server.datasets import active_dataset
from server.errors import WorkshopError
from server.event import exercise_state, frozen_at
from server.models import Submission, utcnow
from server.scoreboard import PrivateStanding, Standing, private_rows, private_standings, public_rows, standings
from server.submissions import iso_utc


@dataclass(frozen=True)
class Board:
    exercise: Exercise
    dataset: str
    active_dataset: str
    frozen_at: datetime | None  # the board is frozen for participants (the instructor's view stays live)
    live: bool  # the rows include results after the freeze (the instructor's view)
    revealed: bool
    rows: list[Standing]
    private: list[PrivateStanding] | None  # the private board, once revealed (or for the instructor)
    datasets: list[str]  # the data sets this exercise has results on, the active one first

    def as_json(self, include_private_scores: bool = False) -> dict:
        body = {
            "exercise": self.exercise.slug,
            "dataset": self.dataset,
            "active_dataset": self.active_dataset,
            "datasets": self.datasets,
            "frozen": self.frozen_at is not None,
            "frozen_at": iso_utc(self.frozen_at) if self.frozen_at else None,
            "revealed": self.revealed,
        }
        if self.revealed and self.private is not None:
            return {**body, "rows": private_rows(self.private)}
        return {**body, "rows": public_rows(self.rows, include_private=include_private_scores)}


def board_datasets(db, slug: str, active: str) -> list[str]:
    names = db.scalars(select(Submission.dataset).where(Submission.exercise_slug == slug).distinct()).all()
    return [active, *sorted(name for name in names if name != active)]


def build_board(
    db, exercise: Exercise, *, dataset: str | None = None, instructor: bool = False, now: datetime | None = None
) -> Board:
    """The board of ``exercise`` on ``dataset`` (default: the active one) for a participant or the instructor."""
    now = now or utcnow()
    active = active_dataset(db)
    chosen = dataset or active
    state = exercise_state(db, exercise)
    freeze = frozen_at(db, now)
    rows = standings(db, exercise.slug, chosen, until=None if instructor else freeze)
    private = private_standings(db, exercise.slug, chosen) if state.revealed or instructor else None
    return Board(
        exercise=exercise,
        dataset=chosen,
        active_dataset=active,
        frozen_at=freeze,
        live=instructor or freeze is None,
        revealed=state.revealed,
        rows=rows,
        private=private,
        datasets=board_datasets(db, exercise.slug, active),
    )


def queue_length(db) -> int:
    return db.scalar(select(func.count(Submission.id)).where(Submission.status == "queued")) or 0


def requested_dataset() -> str | None:
    """The ``?dataset=`` of a board request (None: the active data set)."""
    name = request.args.get("dataset") or None
    if name is not None and len(name) > 64:
        raise WorkshopError("A data set name has at most 64 characters.")
    return name
