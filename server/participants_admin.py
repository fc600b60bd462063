"""The instructor's participant actions, shared by /instructor/participants and `workshop participants`: the list
with stats, rename (history in name_changes), a one-time password-reset code, hide, disqualify, restore, delete.

A reset code is shown once; only its SHA-256 is stored, for RESET_CODE_HOURS. The participant redeems it with
their name and a new password at /reset-password; it changes the password and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from server.errors import WorkshopError
from server.kept import forget
from server.models import NameChange, Participant, QuotaGrant, Submission, utcnow
from server.passwords import display_name_problem, hash_password, name_key, normalise_name, password_problem

RESET_CODE_HOURS = 24
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or copied from a screen
CODE_GROUPS, CODE_GROUP_LENGTH = 3, 4
REASON_MAX = 500


class ParticipantNotFound(WorkshopError):
    status = 404
    code = "not_found"


@dataclass(frozen=True)
class ParticipantRow:
    id: int
    display_name: str
    joined: datetime
    last_seen: datetime | None
    submissions: int
    hidden: bool
    disqualified_reason: str | None
    best: dict[str, float] = field(default_factory=dict)  # exercise slug -> best public score

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "joined": self.joined.isoformat(),
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "submissions": self.submissions,
            "best_public": self.best,
            "hidden": self.hidden,
            "disqualified_reason": self.disqualified_reason,
        }


def participant_rows(db: Session, query: str = "") -> list[ParticipantRow]:
    """Everyone (or those whose name contains ``query``, ignoring case), by name, with their figures."""
    people = select(Participant).order_by(Participant.name_key)
    if query.strip():
        people = people.where(Participant.name_key.contains(name_key(query), autoescape=True))
    participants = db.scalars(people).all()
    counts = dict(
        db.execute(
            select(Submission.participant_id, func.count(Submission.id)).group_by(Submission.participant_id)
        ).all()
    )
    last = dict(
        db.execute(
            select(Submission.participant_id, func.max(Submission.created_at)).group_by(Submission.participant_id)
        ).all()
    )
    best: dict[int, dict[str, float]] = {}
    scored = select(Submission.participant_id, Submission.exercise_slug, func.max(Submission.public_score))
    scored = scored.where(Submission.status == "done", Submission.public_score.is_not(None))
    for participant_id, slug, score in db.execute(scored.group_by(Submission.participant_id, Submission.exercise_slug)):
        best.setdefault(participant_id, {})[slug] = score
    return [
        ParticipantRow(
            id=person.id,
            display_name=person.display_name,
            joined=person.created_at,
            last_seen=max((t for t in (person.last_login_at, last.get(person.id)) if t is not None), default=None),
            submissions=counts.get(person.id, 0),
            hidden=person.hidden,
            disqualified_reason=person.disqualified_reason,
            best=dict(sorted(best.get(person.id, {}).items())),
        )
        for person in participants
    ]


def find_participant(db: Session, name: str) -> Participant:
    participant = db.scalar(select(Participant).where(Participant.name_key == name_key(name)))
    if participant is None:
        raise ParticipantNotFound(f"There is no participant called “{normalise_name(name)}”.")
    return participant


def rename(db: Session, participant: Participant, new_name: str) -> NameChange:
    """Give ``participant`` a new display name (same rules as joining, unique ignoring case); keeps the history."""
    name = normalise_name(new_name)
    if problem := display_name_problem(name):
        raise WorkshopError(problem)
    taken = db.scalar(select(Participant.id).where(Participant.name_key == name_key(name)))
    if taken is not None and taken != participant.id:
        raise WorkshopError(f"The name “{name}” is taken by another participant.")
    if name == participant.display_name:
        raise WorkshopError(f"“{name}” is already this participant's name.")
    change = NameChange(participant_id=participant.id, old_name=participant.display_name, new_name=name)
    participant.display_name, participant.name_key = name, name_key(name)
    db.add(change)
    db.commit()
    return change


def _code_digest(code: str) -> str:
    """SHA-256 of the code as typed, ignoring case, spaces and dashes."""
    plain = "".join(char for char in code.upper() if char.isalnum())
    return hashlib.sha256(plain.encode()).hexdigest()


def new_reset_code(db: Session, participant: Participant) -> str:
    """A fresh one-time code (replacing any earlier one), valid for RESET_CODE_HOURS; shown once, never stored."""
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH)) for _ in range(CODE_GROUPS))
    code = "-".join(groups)
    participant.reset_code_hash = _code_digest(code)
    participant.reset_code_expires_at = utcnow() + timedelta(hours=RESET_CODE_HOURS)
    db.commit()
    return code


def code_matches(participant: Participant | None, code: str) -> bool:
    """Whether ``code`` is this participant's unused, unexpired reset code (a constant-time comparison)."""
    if participant is None or not participant.reset_code_hash or participant.reset_code_expires_at is None:
        return False
    if participant.reset_code_expires_at <= utcnow():
        return False
    return hmac.compare_digest(participant.reset_code_hash, _code_digest(code))


def redeem_reset_code(db: Session, participant: Participant, new_password: str) -> None:
    """Set the new password and use up the code (call after ``code_matches``); nothing else changes."""
    if problem := password_problem(new_password):
        raise WorkshopError(problem)
    participant.password_hash = hash_password(new_password)
    participant.reset_code_hash = participant.reset_code_expires_at = None
    db.commit()


def hide(db: Session, participant: Participant) -> str:
    """Leave the participant off the boards; returns what the page flashes and the command prints."""
    participant.hidden = True
    db.commit()
    return f"{participant.display_name} is hidden from the leaderboards."


def disqualify(db: Session, participant: Participant, reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise WorkshopError("Give a reason for the disqualification: the participant sees it.")
    if len(reason) > REASON_MAX:
        raise WorkshopError(f"The reason may have at most {REASON_MAX} characters.")
    participant.disqualified_reason = reason
    db.commit()
    return f"{participant.display_name} is disqualified."


def restore(db: Session, participant: Participant) -> str:
    """Undo hide and disqualify: back on the boards."""
    participant.hidden, participant.disqualified_reason = False, None
    db.commit()
    return f"{participant.display_name} is back on the leaderboards."


def delete_participant(db: Session, participant: Participant) -> str:
    """Delete the participant with their submissions, quota grants and name history; returns what happened."""
    name, owned = participant.display_name, Submission.participant_id == participant.id
    removed = list(db.scalars(select(Submission.id).where(owned)))
    db.execute(delete(Submission).where(owned))
    db.execute(delete(QuotaGrant).where(QuotaGrant.participant_id == participant.id))
    db.execute(delete(NameChange).where(NameChange.participant_id == participant.id))
    db.delete(participant)
    db.commit()
    forget(current_app, removed)  # a later submission that reuses one of these ids must not find them
    count = f"{len(removed)} submission{'' if len(removed) == 1 else 's'}" if removed else "no submissions"
    return f"Deleted {name} and {count}."


def name_history(db: Session, participant_id: int) -> list[NameChange]:
    query = select(NameChange).where(NameChange.participant_id == participant_id).order_by(NameChange.id)
    return list(db.scalars(query))
