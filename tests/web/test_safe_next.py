"""After a login, ``next=`` is followed only to a path on this site: never to another host, a scheme or a trick."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from factories import INSTRUCTOR_PASSWORD, csrf_token

from server.db import new_session
from server.models import Participant
from server.passwords import name_key

QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

# (next=, where the login sends the browser); "/" is the participant's default page
VARIANTS = [
    ("/\t/evil.com", "/"),  # browsers drop tabs and newlines inside URLs: this is //evil.com
    ("/\\evil.com", "/"),  # browsers read a backslash as a slash
    ("\\\\evil.com", "/"),
    ("/%2F%2Fevil.com", "/"),  # encoded slashes that a later decode turns into //evil.com
    ("%2F%2Fevil.com", "/"),
    ("/%252F%252Fevil.com", "/"),  # encoded twice
    ("/%5Cevil.com", "/"),  # an encoded backslash
    ("/%09/evil.com", "/"),  # an encoded tab
    ("\r\n//evil.com", "/"),
    (" //evil.com", "/"),
    ("/\u200b/evil.com", "/"),  # a zero-width space (an invisible format character)
    ("//evil.com", "/"),
    ("///evil.com", "/"),
    ("https://evil.com", "/"),
    ("https:/evil.com", "/"),
    ("javascript:alert(1)", "/"),
    ("JaVaScRiPt:alert(1)", "/"),
    ("data:text/html,<script>alert(1)</script>", "/"),
    ("evil.com", "/"),  # not a path
    ("", "/"),
    ("/exercises/x?y=1", "/exercises/x?y=1"),  # a path on this site, with its query: followed
    ("/leaderboard", "/leaderboard"),
    ("/submissions/7#log", "/submissions/7#log"),
    ("/exercises/a%20b", "/exercises/a%20b"),  # an encoded space in a path is fine
]


def add_participant(app, name: str, password: str) -> None:
    """A participant as /join makes one, with a cheaper Argon2id hash (still checked by the real login)."""
    with new_session(app) as db:
        db.add(Participant(display_name=name, name_key=name_key(name), password_hash=QUICK_HASHER.hash(password)))
        db.commit()


def test_login_follows_next_only_to_a_path_on_this_site(app):
    """The table, each row through the real login POST (one app, so that it takes seconds, not minutes)."""
    add_participant(app, "Ada", "personal-pass-1")
    wrong = []
    for target, location in VARIANTS:
        client = app.test_client()
        token = csrf_token(client, "/login")
        response = client.post(
            "/login",
            query_string={"next": target},
            data={"csrf_token": token, "display_name": "Ada", "password": "personal-pass-1"},
        )
        if response.status_code != 302 or response.headers["Location"] != location:
            wrong.append((target, response.status_code, response.headers.get("Location")))
    assert wrong == []


@pytest.mark.parametrize("target", ["/\t/evil.com", "/%2F%2Fevil.com", "/%5Cevil.com", "//evil.com"])
def test_instructor_login_follows_next_only_to_a_path_on_this_site(client, target):
    token = csrf_token(client, "/instructor/login")
    response = client.post(
        "/instructor/login", query_string={"next": target}, data={"csrf_token": token, "password": INSTRUCTOR_PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/instructor/"


def test_the_login_page_sends_a_participant_back_where_they_were(app):
    add_participant(app, "Ada", "personal-pass-1")
    client = app.test_client()
    join_page = client.get("/leaderboard").headers["Location"]  # /join?next=/leaderboard, which links to the login
    login_page = join_page.replace("/join", "/login")
    token = csrf_token(client, login_page)
    response = client.post(login_page, data={"csrf_token": token, "display_name": "Ada", "password": "personal-pass-1"})
    assert response.headers["Location"] == "/leaderboard"
