"""Running the event: open and close exercises, deadlines, quotas, the freeze, the reveal, the announcement.

The instructor's pages and ``workshop event`` / ``workshop quota`` call these functions, so both do the same.
Times are naive UTC, as the database stores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from grader.exercises import Exercise, Quota, parse_duration
from server.errors import WorkshopError
from server.models import EventSettings, ExerciseControl, Participant, QuotaGrant, utcnow
from server.passwords import name_key
from server.quotas import quota_status
from server.submissions import iso_utc

MAX_ANNOUNCEMENT = 500
MAX_GRANT = 1000


class SubmissionsClosed(WorkshopError):
    status = 403
    code = "closed"


@dataclass(frozen=True)
class ExerciseState:
    """How one exercise stands in the event: open, its deadline, its quota, whether its private board is public."""

    slug: str
    open: bool
    deadline: datetime | None
    quota: Quota | None
    revealed_at: datetime | None

    def closed_reason(self, now: datetime) -> str | None:
        """Why submissions are refused now, or None while they are accepted."""
        if not self.open:
            return "Submissions to this exercise are closed."
        if self.deadline is not None and now >= self.deadline:
            return "The deadline of this exercise has passed; submissions are closed."
        return None

    @property
    def revealed(self) -> bool:
        return self.revealed_at is not None


def settings(db) -> EventSettings:
    row = db.get(EventSettings, 1)
    if row is None:
        raise WorkshopError("the database is not initialised: run `workshop init` first")
    return row


def _control(db, slug: str, create: bool = False) -> ExerciseControl | None:
    row = db.get(ExerciseControl, slug)
    if row is None and create:
        row = ExerciseControl(slug=slug, open=True, quota_set=False)
        db.add(row)
    return row


def exercise_state(db, exercise: Exercise) -> ExerciseState:
    row = _control(db, exercise.slug)
    if row is None:
        return ExerciseState(exercise.slug, True, None, exercise.quota, None)
    quota = exercise.quota
    if row.quota_set:
        quota = Quota(row.quota_count, row.quota_seconds) if row.quota_count else None
    return ExerciseState(exercise.slug, row.open, row.deadline, quota, row.revealed_at)


def check_open(db, exercise: Exercise, now: datetime | None = None) -> ExerciseState:
    """The exercise's state; raises SubmissionsClosed (403, ``closed``) where it takes no submissions now."""
    state = exercise_state(db, exercise)
    if reason := state.closed_reason(now or utcnow()):
        raise SubmissionsClosed(reason)
    return state


def set_open(db, exercises: list[Exercise], is_open: bool) -> None:
    for exercise in exercises:
        _control(db, exercise.slug, create=True).open = is_open
    db.commit()


def set_deadline(db, exercise: Exercise, deadline: datetime | None) -> None:
    _control(db, exercise.slug, create=True).deadline = deadline
    db.commit()


def set_quota(db, exercise: Exercise, quota: Quota | None, *, back_to_default: bool = False) -> None:
    """The instructor's quota for the exercise (None: no limit); ``back_to_default``: exercise.toml's again."""
    row = _control(db, exercise.slug, create=True)
    row.quota_set = not back_to_default
    row.quota_count = None if quota is None or back_to_default else quota.count
    row.quota_seconds = None if quota is None or back_to_default else quota.per_seconds
    db.commit()


def grant_quota(db, display_name: str, exercise: Exercise, extra: int) -> Participant:
    """Give one participant ``extra`` more submissions in the exercise's window (replaces an earlier grant)."""
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= MAX_GRANT:
        raise WorkshopError(f"The extra submissions must be a whole number from 0 to {MAX_GRANT}.")
    participant = db.scalar(select(Participant).where(Participant.name_key == name_key(display_name)))
    if participant is None:
        raise WorkshopError(f"There is no participant called {display_name!r}.")
    row = db.get(QuotaGrant, (participant.id, exercise.slug))
    if row is None:
        db.add(QuotaGrant(participant_id=participant.id, slug=exercise.slug, extra=extra))
    else:
        row.extra = extra
    db.commit()
    return participant


def freeze(db, at: datetime | None = None) -> datetime:
    """Freeze the public board at ``at`` (default now); a later time freezes it then."""
    moment = at or utcnow()
    settings(db).freeze_at = moment
    db.commit()
    return moment


def unfreeze(db) -> None:
    settings(db).freeze_at = None
    db.commit()


def frozen_at(db, now: datetime | None = None) -> datetime | None:
    """The freeze time when the board is frozen now, else None (also before a freeze set for later)."""
    row = db.get(EventSettings, 1)
    moment = row.freeze_at if row is not None else None
    return moment if moment is not None and moment <= (now or utcnow()) else None


def reveal(db, exercise: Exercise) -> None:
    row = _control(db, exercise.slug, create=True)
    row.revealed_at = row.revealed_at or utcnow()
    db.commit()


def hide(db, exercise: Exercise) -> None:
    row = _control(db, exercise.slug, create=True)
    row.revealed_at = None
    db.commit()


def announce(db, text: str | None) -> str | None:
    """Show ``text`` as a banner on every page (plain text; escaped when shown); None or blank clears it."""
    cleaned = " ".join((text or "").split())
    if len(cleaned) > MAX_ANNOUNCEMENT:
        raise WorkshopError(f"An announcement has at most {MAX_ANNOUNCEMENT} characters, not {len(cleaned)}.")
    settings(db).announcement = cleaned or None
    db.commit()
    return cleaned or None


def announcement(db) -> str | None:
    row = db.get(EventSettings, 1)
    return row.announcement if row is not None else None


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def parse_when(text: str, now: datetime | None = None, utc_offset_minutes: int | None = None) -> datetime:
    """A moment the instructor typed, as naive UTC: ``+30m`` (from now), ``15:30`` (today, local time),
    or ISO 8601 (``2026-12-02T15:30``, local time unless it names its zone, e.g. ``Z`` or ``+01:00``).

    Local time is the server's, or ``utc_offset_minutes`` east of UTC when given (a browser sends its own).
    """
    now = now or utcnow()
    value = text.strip()
    if value.startswith("+"):
        return (now + timedelta(seconds=parse_duration(value[1:]))).replace(microsecond=0)
    if utc_offset_minutes is None:
        zone = datetime.now().astimezone().tzinfo
    else:
        zone = timezone(timedelta(minutes=utc_offset_minutes))
    if match := _CLOCK.match(value):
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise WorkshopError(f"{text!r} is not a time of day.")
        today = now.replace(tzinfo=UTC).astimezone(zone)
        moment = today.replace(hour=hour, minute=minute, second=0, microsecond=0)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise WorkshopError(
                f"{text!r} is not a time: write +30m, 15:30 or 2026-12-02T15:30 (add Z or +01:00 for a zone)."
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def exercise_json(db, exercise: Exercise, participant_id: int | None, now: datetime | None = None) -> dict:
    """What the API and the pages tell about an exercise now: open, deadline and the participant's quota."""
    now = now or utcnow()
    state = exercise_state(db, exercise)
    quota = quota_status(db, participant_id, exercise.slug, state.quota, now) if participant_id else None
    quota_body = quota.as_json() if quota else None
    if quota is None and state.quota is not None:  # nobody's standing: the limit alone
        quota_body = {"limit": state.quota.count, "per_seconds": state.quota.per_seconds}
        quota_body |= {"used": None, "remaining": None, "resets_at": None}
    return {
        **exercise.as_listing(),
        "open": state.closed_reason(now) is None,
        "closed_reason": state.closed_reason(now),
        "deadline": iso_utc(state.deadline) if state.deadline else None,
        "quota": quota_body,
        "revealed": state.revealed,
    }
