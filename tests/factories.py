"""Helpers that act like a browser: fetch a form for its CSRF token, join, log in, submit."""

from __future__ import annotations

import re
import time

EVENT_PASSWORD = "event-secret-42"
INSTRUCTOR_PASSWORD = "teach-secret-42"


def csrf_token(client, url: str) -> str:
    """The CSRF token from the first form on ``url``."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def post_form(client, url: str, data: dict, form_url: str | None = None, **kwargs):
    """POST like a browser: fetch the form page first for its CSRF token."""
    token = csrf_token(client, form_url or url)
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def join(client, name: str = "Ada", password: str = "personal-pass-1"):
    return post_form(
        client,
        "/join",
        {
            "event_password": EVENT_PASSWORD,
            "display_name": name,
            "password": password,
            "password_confirm": password,
        },
    )


def instructor_login(client):
    return post_form(client, "/instructor/login", {"password": INSTRUCTOR_PASSWORD})


def submit_code(client, slug: str, code: str):
    return post_form(client, f"/exercises/{slug}/submit", {"code": code}, form_url=f"/exercises/{slug}")


def wait_for_terminal(client, submission_id: int, timeout: float = 300) -> dict:
    """Poll the submission's JSON until it reaches a terminal state, as the page does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/submissions/{submission_id}.json").get_json()
        if state["status"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"submission {submission_id} did not finish within {timeout} s: {state}")


def make_participant(app, name: str = "Ada", password: str = "personal-pass-1", token: str | None = None) -> int:
    """A participant stored directly (no HTTP, no login limits); with ``token``, that notebook token."""
    from server.db import new_session
    from server.models import Participant
    from server.passwords import api_token_hash, hash_password, name_key

    with new_session(app) as db:
        participant = Participant(display_name=name, name_key=name_key(name), password_hash=hash_password(password))
        participant.api_token_hash = api_token_hash(token) if token else None
        db.add(participant)
        db.commit()
        return participant.id


def login_client(app, participant_id: int):
    """A test client whose session is that participant's (as after a login)."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["role"], session["participant_id"] = "participant", participant_id
        session.permanent = True
    return client


def make_submission(app, participant_id: int, slug: str = "cnn-from-scratch", **fields) -> int:
    """A submission stored directly, ``queued`` unless ``status`` says otherwise; other columns by keyword
    (e.g. ``public_score``, ``private_score``, ``created_at``, ``finished_at``, ``seconds``, ``dataset``)."""
    from server.db import new_session
    from server.models import Submission, utcnow

    values = {"dataset": "synthetic", "code": "def train(data):\n    pass\n", "status": "queued"}
    values |= fields
    if values["status"] == "done":
        values.setdefault("finished_at", utcnow())
        values.setdefault("started_at", values["finished_at"])
    with new_session(app) as db:
        submission = Submission(participant_id=participant_id, exercise_slug=slug, **values)
        db.add(submission)
        db.commit()
        return submission.id
