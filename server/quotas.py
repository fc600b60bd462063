"""Submission quotas: how many a participant used in an exercise's rolling window, what remains, when one frees up.

Counted: accepted submissions, except those that ended ``infrastructure`` (the server's fault) and those
cancelled before they started. The check runs inside ``queue_submission`` after the participant's row is
locked, so two submissions at once cannot both take the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, not_, or_, select

from grader.exercises import Quota
from server.errors import WorkshopError
from server.models import QuotaGrant, Submission, utcnow
from server.submissions import iso_utc


class QuotaExhausted(WorkshopError):
    status = 429
    code = "quota_exhausted"


@dataclass(frozen=True)
class QuotaStatus:
    limit: int
    per_seconds: int
    used: int
    resets_at: datetime | None  # when the oldest counted submission leaves the window (None: none counted)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def as_json(self) -> dict:
        return {
            "limit": self.limit,
            "per_seconds": self.per_seconds,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": iso_utc(self.resets_at) if self.resets_at else None,
        }


def counted():
    """The submissions a quota counts (not the instructor's reruns: they are never charged)."""
    infrastructure = and_(Submission.status == "failed", Submission.error_kind == "infrastructure")
    cancelled_unstarted = and_(Submission.status == "cancelled", Submission.started_at.is_(None))
    return and_(Submission.charged.is_(True), not_(or_(infrastructure, cancelled_unstarted)))


def quota_status(db, participant_id: int, slug: str, quota: Quota | None, now: datetime | None = None):
    """The participant's standing against ``quota`` (None where the exercise has no quota)."""
    if quota is None:
        return None
    now = now or utcnow()
    since = now - timedelta(seconds=quota.per_seconds)
    times = db.scalars(
        select(Submission.created_at)
        .where(Submission.participant_id == participant_id, Submission.exercise_slug == slug)
        .where(Submission.created_at > since, counted())
        .order_by(Submission.created_at)
    ).all()
    grant = db.get(QuotaGrant, (participant_id, slug))
    limit = quota.count + (grant.extra if grant else 0)
    if not times:
        return QuotaStatus(limit, quota.per_seconds, 0, None)
    # the next submission frees up when enough of the oldest have left the window to go below the limit
    index = max(0, len(times) - limit) if len(times) >= limit else 0
    resets_at = times[index] + timedelta(seconds=quota.per_seconds)
    return QuotaStatus(limit, quota.per_seconds, len(times), resets_at)


def check_quota(db, participant_id: int, slug: str, quota: Quota | None, now: datetime | None = None) -> None:
    """Raise QuotaExhausted (429, ``quota_exhausted``, with the reset time) when no submission remains."""
    now = now or utcnow()
    status = quota_status(db, participant_id, slug, quota, now)
    if status is None or status.remaining > 0:
        return
    wait = max(1, int((status.resets_at - now).total_seconds()) + 1)
    minutes = f"{wait // 60} min {wait % 60} s" if wait >= 60 else f"{wait} s"
    raise QuotaExhausted(
        f"You have used all {status.limit} submissions allowed per {describe_seconds(status.per_seconds)} "
        f"for this exercise; the next one frees up in {minutes}.",
        details={"resets_at": iso_utc(status.resets_at), "quota": status.as_json()},
        headers={"Retry-After": str(wait)},
    )


def describe_seconds(seconds: int) -> str:
    """``3600`` -> "hour", ``5400`` -> "90 minutes", ``30`` -> "30 seconds"."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"
