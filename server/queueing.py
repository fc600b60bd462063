"""Putting submissions in the queue (open exercise, quota, open-submission limit) and taking them out again."""

from __future__ import annotations

from sqlalchemy import func, select, update

from grader.exercises import Exercise
from grader.grading import SubmissionRejected, check_source
from grader.storable import storable_text
from server.datasets import active_dataset
from server.errors import WorkshopError
from server.event import check_open
from server.models import OPEN_STATUSES, Participant, Submission, utcnow
from server.quotas import QuotaExhausted, check_quota

MAX_OPEN_SUBMISSIONS = 1  # queued or running per participant (WORKSHOP_MAX_OPEN_SUBMISSIONS): fair turns


def queue_submission(
    db,
    participant: Participant,
    exercise: Exercise,
    code: bytes | str,
    filename: str | None,
    max_open: int = MAX_OPEN_SUBMISSIONS,
):
    """Check and store a submission as ``queued``; raises a WorkshopError whose message the participant sees.

    Refused, with nothing stored: code that cannot run (``CodeRejected``), an exercise closed or past its
    deadline (403 ``closed``), an exhausted quota (429 ``quota_exhausted``), too many open submissions.
    The quota and the open-submission limit are atomic: the participant's row is locked (written) before
    counting, so two concurrent submissions of one participant are counted one after the other.
    """
    try:
        text = check_source(code)
    except SubmissionRejected as error:
        raise CodeRejected(str(error), error.kind) from None
    now = utcnow()
    state = check_open(db, exercise, now)
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
    if open_count >= max_open:
        db.rollback()
        waiting = "a submission" if open_count == 1 else f"{open_count} submissions"
        raise TooManyOpen(f"You already have {waiting} waiting or running; wait until it finishes.")
    try:
        check_quota(db, participant.id, exercise.slug, state.quota, now)
    except QuotaExhausted:
        db.rollback()
        raise
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


class TooManyOpen(WorkshopError):
    code = "too_many_open"


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
