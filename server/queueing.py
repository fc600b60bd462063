"""Putting submissions in the queue (with the open-submission limit) and taking them out again."""

from __future__ import annotations

from sqlalchemy import func, select, update

from grader.exercises import Exercise
from grader.grading import SubmissionRejected, check_source
from grader.storable import storable_text
from server.datasets import active_dataset
from server.errors import WorkshopError
from server.models import OPEN_STATUSES, Participant, Submission, utcnow

MAX_OPEN_SUBMISSIONS = 3  # queued or running per participant, so nobody fills the queue


def queue_submission(db, participant: Participant, exercise: Exercise, code: bytes | str, filename: str | None):
    """Check and store a submission as ``queued``; raises a WorkshopError whose message the participant sees.

    The open-submission limit is atomic: the participant's row is locked (written) before counting, so two
    concurrent submissions of one participant are counted one after the other, on SQLite and PostgreSQL.
    """
    try:
        text = check_source(code)
    except SubmissionRejected as error:
        raise CodeRejected(str(error), error.kind) from None
    now = utcnow()
    locked = db.execute(update(Participant).where(Participant.id == participant.id).values(last_submitted_at=now))
    if locked.rowcount != 1:
        db.rollback()
        raise WorkshopError("Your participant account no longer exists.")
    open_count = db.scalar(
        select(func.count(Submission.id)).where(
            Submission.participant_id == participant.id,
            Submission.status.in_(OPEN_STATUSES),
        )
    )
    if open_count >= MAX_OPEN_SUBMISSIONS:
        db.rollback()
        raise WorkshopError(f"You already have {open_count} submissions waiting or running; wait until one finishes.")
    submission = Submission(
        participant_id=participant.id,
        exercise_slug=exercise.slug,
        dataset=active_dataset(db),
        code=text,
        filename=None if filename is None else storable_text(filename, 255, keep="tail"),
        status="queued",
        created_at=now,
    )
    db.add(submission)
    db.commit()
    return submission


class CodeRejected(WorkshopError):
    """The code cannot be queued: too large, not text, a syntax error, nesting the parser gives up on."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.code = kind


def cancel_submission(db, submission: Submission) -> bool:
    """Cancel a queued or running submission; a running job's worker notices at its next lease renewal."""
    cancelled = db.execute(
        update(Submission)
        .where(Submission.id == submission.id, Submission.status.in_(OPEN_STATUSES))
        .values(status="cancelled", claim_token=None, lease_expires_at=None, finished_at=utcnow())
    )
    db.commit()
    return cancelled.rowcount == 1
