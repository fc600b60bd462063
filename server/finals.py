"""The final selection a participant makes: at most MAX_FINAL finished submissions per exercise count for the
private board (none marked: their two best public ones). The submission page and the API both call set_final."""

from __future__ import annotations

from sqlalchemy import func, select, update

from server.errors import NotFound, WorkshopError
from server.models import Participant, Submission
from server.scoreboard import MAX_FINAL


class TooManyFinals(WorkshopError):
    status = 409
    code = "too_many_finals"


def can_be_final(submission: Submission) -> bool:
    """Only a finished submission with a public score can count for the private board."""
    return submission.status == "done" and submission.public_score is not None


def finals_count(db, participant_id: int, slug: str) -> int:
    return db.scalar(
        select(func.count(Submission.id)).where(
            Submission.participant_id == participant_id,
            Submission.exercise_slug == slug,
            Submission.final.is_(True),
        )
    )


def set_final(db, participant: Participant | None, submission: Submission, final: bool) -> Submission:
    """Mark (or unmark) the participant's own finished submission as final; raises WorkshopError on refusal.

    Someone else's submission is simply not found (404), as everywhere else.
    """
    if participant is None or submission.participant_id != participant.id:
        raise NotFound("There is no such submission of yours.")
    if final and not submission.final:
        if not can_be_final(submission):
            raise WorkshopError("Only a finished submission with a public score can be marked as final.")
        # lock the participant's row (a write: SQLite has no row locks, SELECT ... FOR UPDATE does nothing there)
        # so two marks at once cannot both take the last place
        same = Participant.last_submitted_at
        db.execute(update(Participant).where(Participant.id == participant.id).values(last_submitted_at=same))
        if finals_count(db, participant.id, submission.exercise_slug) >= MAX_FINAL:
            raise TooManyFinals(
                f"At most {MAX_FINAL} submissions per exercise can be final; unmark one of your finals first."
            )
    submission.final = bool(final)
    db.commit()
    return submission
