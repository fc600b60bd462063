"""Failed logins, counted per key in one counter row each, so that guessing is slow and a crowded room is not.

Keys (``scope``, ``key``): a display name (its ``name_key``), an address (the flood guard), the instructor
login per address and for everybody, wrong notebook tokens per address. Every attempt first *takes a ticket*:
one atomic ``INSERT ... ON CONFLICT DO UPDATE SET failures = failures + 1 ... RETURNING`` in its own
transaction, before the password is checked. So counting and recording are one step: of any number of
concurrent attempts at most ``limit`` get through, whatever the database interleaves. A wrong password keeps
its ticket (and the ``limit``-th locks the key for a while, longer each time); a right one gives it back.

Rounds end when the window (``LOGIN_WINDOW_SECONDS``) has passed since the first failure of the round or when
a lock has run out; the lock growth is forgotten after ``LOGIN_FORGET_SECONDS`` without an attempt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from server.db import new_session
from server.models import LoginThrottle, utcnow

# scope -> the config key of its limit
LIMITS = {
    "name": "LOGIN_NAME_LIMIT",  # wrong personal passwords for one display name, from anywhere
    "address": "LOGIN_ADDRESS_LIMIT",  # every wrong password from one address: the flood guard
    "instructor": "LOGIN_INSTRUCTOR_LIMIT",  # wrong instructor passwords from one address
    "instructor*": "LOGIN_INSTRUCTOR_GLOBAL_LIMIT",  # wrong instructor passwords from everywhere (key "*")
    "token": "LOGIN_TOKEN_LIMIT",  # wrong notebook tokens from one address (valid ones are never counted)
    "reset": "LOGIN_NAME_LIMIT",  # wrong password-reset codes for one display name, like wrong passwords
}
KEY_LENGTH = 64


@dataclass(frozen=True)
class Ticket:
    scope: str
    key: str
    failures: int  # this attempt's number in the round, counting itself
    lockouts: int
    locked_until: datetime | None
    now: datetime

    @property
    def limit(self) -> int:
        return int(current_app.config[LIMITS[self.scope]])

    @property
    def allowed(self) -> bool:
        return self.locked_until is None and self.failures <= self.limit

    @property
    def retry_after(self) -> int:
        """Seconds until this key takes attempts again (an estimate while the last allowed one is in flight)."""
        if self.locked_until is not None:
            return max(1, math.ceil((self.locked_until - self.now).total_seconds()))
        return lock_seconds(self.lockouts)


def lock_seconds(lockouts: int) -> int:
    """The first lock lasts LOGIN_LOCK_SECONDS, each next one twice as long, at most LOGIN_LOCK_MAX_SECONDS."""
    config = current_app.config
    return int(min(config["LOGIN_LOCK_SECONDS"] * 2 ** min(lockouts, 30), config["LOGIN_LOCK_MAX_SECONDS"]))


def wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def _insert(dialect: str):
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"login throttling supports SQLite and PostgreSQL, not {dialect}")


def take(scope: str, key: str) -> Ticket:
    """Count this attempt before the password is checked: one atomic upsert, committed at once."""
    key = key[:KEY_LENGTH]
    config = current_app.config
    now = utcnow()
    window_start = now - timedelta(seconds=config["LOGIN_WINDOW_SECONDS"])
    forget_before = now - timedelta(seconds=config["LOGIN_FORGET_SECONDS"])
    row = LoginThrottle.__table__.c
    lock_over = and_(row.locked_until.is_not(None), row.locked_until <= now)
    new_round = or_(row.window_started_at < window_start, lock_over)
    with new_session() as db:
        insert = _insert(db.get_bind().dialect.name)
        statement = insert(LoginThrottle.__table__).values(
            scope=scope, key=key, failures=1, window_started_at=now, locked_until=None, lockouts=0, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[row.scope, row.key],
            set_={
                "failures": case((new_round, 1), else_=row.failures + 1),
                "window_started_at": case((new_round, now), else_=row.window_started_at),
                "locked_until": case((lock_over, None), else_=row.locked_until),
                "lockouts": case((row.updated_at < forget_before, 0), else_=row.lockouts),
                "updated_at": now,
            },
        ).returning(row.failures, row.lockouts, row.locked_until)
        failures, lockouts, locked_until = db.execute(statement).one()
        db.commit()
    return Ticket(scope, key, failures, lockouts, locked_until, now)


def failed(ticket: Ticket) -> None:
    """The password was wrong: the ticket stays counted; the last one allowed in a round locks the key."""
    config = current_app.config
    now = utcnow()
    with new_session() as db:
        if ticket.failures >= ticket.limit:
            db.execute(
                update(LoginThrottle)
                .where(
                    LoginThrottle.scope == ticket.scope,
                    LoginThrottle.key == ticket.key,
                    or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
                )
                .values(
                    locked_until=now + timedelta(seconds=lock_seconds(ticket.lockouts)),
                    lockouts=LoginThrottle.lockouts + 1,
                )
            )
        longest = max(config["LOGIN_FORGET_SECONDS"], config["LOGIN_WINDOW_SECONDS"], config["LOGIN_LOCK_MAX_SECONDS"])
        db.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < now - timedelta(seconds=longest)))
        db.commit()


def succeeded(ticket: Ticket, *, reset: bool) -> None:
    """The password was right: forget the key's failures (``reset``), or just give this attempt's ticket back."""
    with new_session() as db:
        where = (LoginThrottle.scope == ticket.scope, LoginThrottle.key == ticket.key)
        if reset:
            db.execute(delete(LoginThrottle).where(*where))
        else:
            db.execute(
                update(LoginThrottle)
                .where(*where, LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )
        db.commit()
