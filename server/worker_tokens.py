"""Worker tokens: what a remote worker shows the worker API (``Authorization: Bearer wt_...``).

A token is random (256 bits), shown once when it is made and stored only as its SHA-256; revoking keeps the row
(who had access, until when). ``workshop worker-token create|list|revoke`` manages them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select

from server.errors import WorkshopError
from server.models import WorkerToken, utcnow

PREFIX = "wt_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LAST_USED_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often (not on every request)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def create_token(db, name: str) -> str:
    """A new token for worker ``name`` (returned once, never stored); a revoked name may be given a new one."""
    if not NAME_PATTERN.match(name or ""):
        raise WorkshopError("A worker name is 1 to 64 letters, digits, '.', '_' or '-' (e.g. gpu-box-1).")
    token = PREFIX + secrets.token_urlsafe(32)
    row = db.scalar(select(WorkerToken).where(WorkerToken.name == name))
    if row is not None and row.revoked_at is None:
        raise WorkshopError(f"The worker {name} already has a token; revoke it first or choose another name.")
    if row is None:
        row = WorkerToken(name=name)
        db.add(row)
    row.token_hash, row.created_at, row.last_used_at, row.revoked_at = token_hash(token), utcnow(), None, None
    db.commit()
    return token


def list_tokens(db) -> list[WorkerToken]:
    return list(db.scalars(select(WorkerToken).order_by(WorkerToken.name)))


def revoke_token(db, name: str) -> None:
    row = db.scalar(select(WorkerToken).where(WorkerToken.name == name))
    if row is None:
        raise WorkshopError(f"There is no worker token called {name}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.commit()


def worker_for_token(db, token: str | None) -> WorkerToken | None:
    """The worker holding this valid (not revoked) token, its last use noted; None for anything else."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = db.scalar(select(WorkerToken).where(WorkerToken.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        row.last_used_at = now
        db.commit()
    return row
