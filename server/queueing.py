"""Putting submissions in the queue (open exercise, quota, open-submission limit) and taking them out again."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import func, select, update

from grader.contract import ContractViolation, check_contract
from grader.exercises import Exercise
from grader.grading import SubmissionRejected, check_source
from grader.storable import storable_text
from server.datasets import active_dataset
from server.errors import WorkshopError
from server.event import check_open
from server.models import OPEN_STATUSES, Participant, Submission, utcnow
from server.quotas import QuotaExhausted, check_quota

MAX_OPEN_SUBMISSIONS = 1  # queued or running per participant (WORKSHOP_MAX_OPEN_SUBMISSIONS): fair turns
MAX_SEED = 2**31 - 1  # fits every database's INTEGER, NumPy's and TensorFlow's seeds
WARNING_PREFIX = "Warning: "


def queue_submission(
    db,
    participant: Participant,
    exercise: Exercise,
    code: bytes | str,
    filename: str | None,
    max_open: int = MAX_OPEN_SUBMISSIONS,
    seed: int | str | None = None,
):
    """Check and store a submission as ``queued``; raises a WorkshopError whose message the participant sees.

    Refused, with nothing stored and nothing charged: code that cannot run (``CodeRejected``: too large,
    not text, a syntax error, no ``train(data)`` at the top level), a seed that is not a whole number, an
    exercise closed or past its deadline (403 ``closed``), an exhausted quota (429 ``quota_exhausted``), too
    many open submissions. The quota and the open-submission limit are atomic: the participant's row is
    locked (written) before counting, so two concurrent submissions of one participant are counted one after
    the other. ``seed`` (None or empty: a random one) is stored and handed to the harness as ``data.seed``;
    suspicious but legal code is queued with warnings in its notes.
    """
    text, warnings = checked_code(code)
    seed = chosen_seed(seed)
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
        seed=seed,
        notes=[storable_text(WARNING_PREFIX + warning, 300) for warning in warnings] or None,
    )
    db.add(submission)
    db.commit()
    return submission


def checked_code(code: bytes | str) -> tuple[str, list[str]]:
    """The code as text and the contract check's warnings; raises CodeRejected (with the line, where known)."""
    try:
        text = check_source(code)
    except SubmissionRejected as error:
        found = re.search(r"\bline (\d+)", str(error)) if error.kind == "syntax_error" else None
        raise CodeRejected(str(error), error.kind, int(found.group(1)) if found else None) from None
    try:
        report = check_contract(text)
    except ContractViolation as error:
        raise CodeRejected(str(error), "contract", error.line) from None
    except (MemoryError, RecursionError, ValueError):  # check_source parsed it; a second parse should too
        raise CodeRejected("the code is nested too deeply to check; split long expressions up", "too_complex") from None
    return text, report.warnings


def chosen_seed(seed: int | str | None) -> int:
    """The participant's seed (a whole number 0 to 2^31-1), or a random one when none is given."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return secrets.randbelow(MAX_SEED + 1)
    try:
        number = int(seed.strip() if isinstance(seed, str) else seed)
    except (TypeError, ValueError):
        raise InvalidSeed(
            f"The seed must be a whole number from 0 to {MAX_SEED}; leave it empty for a random one."
        ) from None
    if isinstance(seed, bool) or isinstance(seed, float) or not 0 <= number <= MAX_SEED:
        raise InvalidSeed(f"The seed must be a whole number from 0 to {MAX_SEED}; leave it empty for a random one.")
    return number


class TooManyOpen(WorkshopError):
    code = "too_many_open"


class InvalidSeed(WorkshopError):
    code = "invalid_seed"


class CodeRejected(WorkshopError):
    """The code cannot be queued: too large, not text, a syntax error, nesting the parser gives up on, no
    ``train(data)`` at the top level (``contract``). ``line`` is the line to mark in the editor, where known."""

    def __init__(self, message: str, kind: str, line: int | None = None):
        super().__init__(message, details={"line": line} if line is not None else None)
        self.code = kind
        self.line = line


def cancel_submission(db, submission: Submission) -> bool:
    """Cancel a queued or running submission; a running job's worker notices at its next lease renewal."""
    cancelled = db.execute(
        update(Submission)
        .where(Submission.id == submission.id, Submission.status.in_(OPEN_STATUSES))
        .values(status="cancelled", claim_token=None, lease_expires_at=None, finished_at=utcnow())
    )
    db.commit()
    return cancelled.rowcount == 1
