"""Password hashing (Argon2id, a slow hash), notebook tokens, and the rules for display names and passwords."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
NAME_PATTERN = re.compile(r"^[^\W_][\w .'-]*$")
NAME_MIN, NAME_MAX = 2, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 200
TOKEN_PREFIX = "ws_"  # noqa: S105 - a marker that makes leaked tokens easy to spot, not a secret


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash or not password:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_SHARED_KEY = secrets.token_bytes(32)  # this process only: what it remembers is useless anywhere else
_shared_matches: dict[str, bytes] = {}  # a stored hash -> the HMAC of the password that matched it


def check_shared_password(stored_hash: str | None, password: str) -> bool:
    """For the event password, which a whole room types within minutes: after its first match, the same
    password is recognised by an HMAC under a per-process key, compared in constant time, so a join costs
    one Argon2 hash (the new personal password's) instead of two. A wrong password still pays the full
    Argon2 check; a changed event password has another stored hash, so nothing remembered applies to it."""
    if not stored_hash or not password:
        return False
    digest = hmac.new(_SHARED_KEY, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    known = _shared_matches.get(stored_hash)
    if known is not None and hmac.compare_digest(known, digest):
        return True
    if not check_password(stored_hash, password):
        return False
    if len(_shared_matches) >= 8:
        _shared_matches.clear()
    _shared_matches[stored_hash] = digest
    return True


def normalise_name(name: str) -> str:
    """NFC, trimmed, inner runs of spaces collapsed: what is stored and shown."""
    return " ".join(unicodedata.normalize("NFC", name or "").split())


def name_key(name: str) -> str:
    """The case-insensitive identity of a display name (``Ada`` and ``ADA`` are the same person)."""
    return normalise_name(name).casefold()


def display_name_problem(name: str) -> str | None:
    """Why a display name is not acceptable, or None."""
    if not NAME_MIN <= len(name) <= NAME_MAX:
        return f"Display name must be {NAME_MIN} to {NAME_MAX} characters long."
    if not NAME_PATTERN.match(name):
        return "Display name may use letters, digits, spaces, and . ' - _, and must start with a letter or digit."
    return None


def password_problem(password: str) -> str | None:
    if len(password) < PASSWORD_MIN:
        return f"Your personal password must have at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"Your personal password may have at most {PASSWORD_MAX} characters."
    return None


def new_api_token() -> tuple[str, str]:
    """A fresh notebook token and the hash that is stored (the token itself is shown once, never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, api_token_hash(token)


def api_token_hash(token: str) -> str:
    """SHA-256: the token carries 256 random bits, so a fast hash suffices and lets the server look it up."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()
