"""A participant's own work as the exercise pages show it: progress per exercise, and the code the editor opens with.

The editor never greets a returning participant with the starter: it opens with their last submission
(``?starter=1`` asks for the starter, ``?from=<id>`` for one of their own submissions to edit and resubmit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from grader.exercises import Exercise
from server.models import OPEN_STATUSES, Participant, Submission


@dataclass(frozen=True)
class Progress:
    """One participant on one exercise: submissions made, best public score on the active data set, finals."""

    submissions: int = 0
    best_public: float | None = None
    finals: int = 0
    waiting: int = 0  # queued or running now


def progress_by_exercise(db: Session, participant_id: int, dataset: str) -> dict[str, Progress]:
    """Progress per exercise slug (exercises never tried are absent); cancelled submissions are not counted."""
    done_here = and_(Submission.status == "done", Submission.dataset == dataset)
    rows = db.execute(
        select(
            Submission.exercise_slug,
            func.count(Submission.id),
            func.max(case((done_here, Submission.public_score))),
            func.sum(case((Submission.final.is_(True), 1), else_=0)),
            func.sum(case((Submission.status.in_(OPEN_STATUSES), 1), else_=0)),
        )
        .where(Submission.participant_id == participant_id, Submission.status != "cancelled")
        .group_by(Submission.exercise_slug)
    ).all()
    return {row[0]: Progress(row[1], row[2], int(row[3] or 0), int(row[4] or 0)) for row in rows}


@dataclass(frozen=True)
class EditorCode:
    """What the editor opens with, and why: ``starter``, ``last`` (their newest submission) or ``from`` (one chosen).

    ``chosen``: asked for explicitly in the address (or a refused submission sent back), so a draft kept in the
    browser must not replace it; by default the browser's newer draft wins.
    """

    code: str
    origin: str
    submission_id: int | None = None
    chosen: bool = False


def editor_code(
    db: Session, participant: Participant | None, exercise: Exercise, latest: Submission | None, args
) -> EditorCode:
    """The code for the editor from the request's ``args``: ``starter=1``, ``from=<id>`` (own only), ``restore=1``."""
    if participant is None or args.get("starter"):
        return EditorCode(exercise.starter, "starter", chosen=bool(args.get("starter")))
    chosen = own_submission(db, participant, exercise, args.get("from", ""))
    if chosen is not None:
        return EditorCode(chosen.code, "from", chosen.id, chosen=True)
    if latest is not None:
        return EditorCode(latest.code, "last", latest.id, chosen=bool(args.get("restore")))
    return EditorCode(exercise.starter, "starter")


def own_submission(db: Session, participant: Participant, exercise: Exercise, raw_id: str) -> Submission | None:
    """The participant's own submission to this exercise with that id, else None (another's is never shown)."""
    if not raw_id.isdigit() or len(raw_id) > 12:
        return None
    submission = db.get(Submission, int(raw_id))
    if submission is None or submission.participant_id != participant.id:
        return None
    return submission if submission.exercise_slug == exercise.slug else None


LINE_IN_MESSAGE = re.compile(r"\bline (\d+)\b")


def error_line(error) -> int | None:
    """The line a refused submission's error points at: its ``line``, else "line N" in its message."""
    line = getattr(error, "line", None)
    if isinstance(line, int) and line > 0:
        return line
    match = LINE_IN_MESSAGE.search(getattr(error, "message", "") or str(error))
    return int(match.group(1)) if match else None
