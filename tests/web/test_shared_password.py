"""The event password, which a whole room types within minutes, costs one Argon2 check per process, not one
per join; a wrong one always pays the full check, and a changed event password is checked afresh."""

from __future__ import annotations

from server import passwords
from server.passwords import check_shared_password, hash_password


def test_a_room_joining_pays_one_argon2_check_for_the_event_password(monkeypatch):
    stored = hash_password("event-pass-1")
    checks = []
    real = passwords.check_password
    monkeypatch.setattr(passwords, "check_password", lambda *args: checks.append(1) or real(*args))
    assert all(check_shared_password(stored, "event-pass-1") for _ in range(50))
    assert len(checks) == 1
    assert not check_shared_password(stored, "event-pass-2") and not check_shared_password(stored, "")
    assert len(checks) == 2  # a wrong password is checked in full (the empty one is refused before)
    changed = hash_password("new-event-pass")
    assert not check_shared_password(changed, "event-pass-1")  # the old password is not the new one
    assert check_shared_password(changed, "new-event-pass") and len(checks) == 4
