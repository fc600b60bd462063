"""Typed SQLAlchemy 2 models: event settings, participants, submissions, failed logins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TERMINAL_STATUSES = ("done", "failed", "cancelled")
STATUSES = ("queued", "running", "scoring", *TERMINAL_STATUSES)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class EventSettings(Base):
    """One row: the event's passwords (hashed) and its active data set."""

    __tablename__ = "event_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    event_password_hash: Mapped[str | None] = mapped_column(String(255))
    instructor_password_hash: Mapped[str | None] = mapped_column(String(255))
    active_dataset: Mapped[str] = mapped_column(String(64), default="synthetic")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(32))
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the personal notebook token (256 random bits, so a fast hash suffices); None: no token
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    submissions: Mapped[list[Submission]] = relationship(back_populates="participant")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_status_created", "status", "created_at"),
        Index("ix_submissions_exercise_participant", "exercise_slug", "participant_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    exercise_slug: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    public_score: Mapped[float | None]
    private_score: Mapped[float | None]
    metrics: Mapped[dict | None] = mapped_column(JSON)
    history: Mapped[list | None] = mapped_column(JSON)
    notes: Mapped[list | None] = mapped_column(JSON)
    run_info: Mapped[dict | None] = mapped_column(JSON)
    log: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float | None]
    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    participant: Mapped[Participant] = relationship(back_populates="submissions")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class LoginFailure(Base):
    """One failed login, kept for the per-address rate limit."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
