"""Typed SQLAlchemy 2 models: event settings, participants, submissions, failed logins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TERMINAL_STATUSES = ("done", "failed", "cancelled")
OPEN_STATUSES = ("queued", "running")  # a job waiting for a slot or on one
STATUSES = (*OPEN_STATUSES, *TERMINAL_STATUSES)


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
    announcement: Mapped[str | None] = mapped_column(Text)  # a banner on every page (plain text)
    freeze_at: Mapped[datetime | None]  # the public board shows everyone as they stood at this time
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
    # written whenever a submission is queued: the row lock that makes the open-submission limit atomic
    last_submitted_at: Mapped[datetime | None]
    # the instructor's moderation: hidden from the boards, or disqualified with a reason the participant sees
    hidden: Mapped[bool] = mapped_column(default=False, server_default=false())
    disqualified_reason: Mapped[str | None] = mapped_column(Text)
    # a one-time password-reset code (SHA-256 of it) the instructor handed over, and until when it works
    reset_code_hash: Mapped[str | None] = mapped_column(String(64))
    reset_code_expires_at: Mapped[datetime | None]

    submissions: Mapped[list[Submission]] = relationship(back_populates="participant")


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_status_created", "status", "created_at"),
        Index("ix_submissions_exercise_participant", "exercise_slug", "participant_id"),
        Index("ix_submissions_participant_created", "participant_id", "created_at"),
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
    not_before: Mapped[datetime | None]  # an infrastructure retry waits until then (growing back-off)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # marked by its participant as one of (at most two) final submissions for the private board
    final: Mapped[bool] = mapped_column(default=False, server_default=false())
    # earlier verdicts of a rescored or rerun submission (the newest counts), oldest first
    verdicts: Mapped[list | None] = mapped_column(JSON)
    # a rerun the instructor queued: after everyone's own jobs (priority below 0), never charged to a quota
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    charged: Mapped[bool] = mapped_column(default=True, server_default=true())
    # the harness seeds Python, NumPy and TensorFlow with it (data.seed); None: queued before seeds existed
    seed: Mapped[int | None]

    participant: Mapped[Participant] = relationship(back_populates="submissions")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class LoginThrottle(Base):
    """Failed logins counted for one key: a display name, an address, the instructor login (server/throttle.py).

    ``failures`` counts attempts in the current round (taken before the password is checked, given back on
    success), ``locked_until`` refuses attempts while set, ``lockouts`` makes each next lock longer.
    """

    __tablename__ = "login_throttles"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # name, address, instructor, ...
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    lockouts: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WorkerSlot(Base):
    """One worker slot as it last reported itself: the instructor sees paused or silent slots and why."""

    __tablename__ = "worker_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)  # host:pid:slot-N
    uid: Mapped[int | None]  # the sandbox uid the slot runs jobs as
    gpu: Mapped[int | None]  # the GPU index it owns (None: CPU)
    state: Mapped[str] = mapped_column(String(16), default="idle")  # idle, busy, paused, stopped, dead
    reason: Mapped[str | None] = mapped_column(Text)
    paused_until: Mapped[datetime | None]
    current_submission_id: Mapped[int | None]
    jobs_done: Mapped[int] = mapped_column(default=0)
    infrastructure_failures: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExerciseControl(Base):
    """What the instructor changed for one exercise during the event; no row: open, no deadline, the
    exercise.toml quota, not revealed."""

    __tablename__ = "exercise_controls"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    open: Mapped[bool] = mapped_column(default=True, server_default=true())
    deadline: Mapped[datetime | None]
    # quota_set: the instructor's quota replaces exercise.toml's (quota_count None: no limit)
    quota_set: Mapped[bool] = mapped_column(default=False, server_default=false())
    quota_count: Mapped[int | None]
    quota_seconds: Mapped[int | None]
    revealed_at: Mapped[datetime | None]  # the private board is public from then on
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class QuotaGrant(Base):
    """Extra submissions one participant may make in an exercise's quota window."""

    __tablename__ = "quota_grants"

    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    extra: Mapped[int] = mapped_column(default=0)


class NameChange(Base):
    """A participant's earlier display name: renames keep their history."""

    __tablename__ = "name_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    old_name: Mapped[str] = mapped_column(String(32))
    new_name: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerToken(Base):
    """A remote worker's credential for the worker API (server/worker_tokens.py): stored hashed, revocable."""

    __tablename__ = "worker_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token (it is random)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
