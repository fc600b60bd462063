"""Joining, logging in and out, and their bad inputs; CSRF, rate limits, cookies, pages behind login."""

from __future__ import annotations

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD, csrf_token, instructor_login, join, post_form


def test_every_page_needs_a_login(client):
    for path in ("/", "/exercises/cnn-from-scratch", "/leaderboard", "/submissions/1", "/instructor/"):
        response = client.get(path)
        assert response.status_code == 302, path
        landing = "/instructor/login" if path.startswith("/instructor") else "/join"  # newcomers: the event password
        assert response.headers["Location"].startswith(landing), path


def test_the_instructors_pages_send_to_the_instructor_login_and_back(client):
    response = client.get("/instructor/event/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/instructor/login?next=/instructor/event/"
    after = post_form(client, "/instructor/login?next=/instructor/event/", {"password": INSTRUCTOR_PASSWORD})
    assert after.status_code == 302 and after.headers["Location"] == "/instructor/event/"


def test_json_pages_answer_401_without_login(client):
    response = client.get("/submissions/1.json")
    assert response.status_code == 401
    assert response.get_json()["error"]["status"] == 401


def test_join_logs_in_and_shows_exercises(client):
    response = join(client, "Ada Lovelace")
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Ada Lovelace" in page and "Look at the data" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event_password": "wrong"}, "event password is not right"),
        ({"display_name": "A"}, "2 to 32 characters"),
        ({"display_name": "x" * 33}, "2 to 32 characters"),
        ({"display_name": "<script>"}, "may use letters"),
        ({"display_name": "   "}, "2 to 32 characters"),
        ({"password": "short", "password_confirm": "short"}, "at least 8 characters"),
        ({"password_confirm": "different-pass"}, "do not match"),
    ],
)
def test_join_rejects_bad_input(client, fields, message):
    data = {
        "event_password": EVENT_PASSWORD,
        "display_name": "Grace",
        "password": "personal-pass-1",
        "password_confirm": "personal-pass-1",
        **fields,
    }
    response = post_form(client, "/join", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def test_display_names_are_unique_ignoring_case(app):
    first, second = app.test_client(), app.test_client()
    assert join(first, "Grace Hopper").status_code == 302
    response = join(second, "  grace   HOPPER ")
    assert response.status_code == 400
    assert "is taken" in response.get_data(as_text=True)


def test_rejected_join_keeps_the_display_name(client):
    response = post_form(
        client,
        "/join",
        {
            "event_password": EVENT_PASSWORD,
            "display_name": "Keep Me",
            "password": "x",
            "password_confirm": "x",
        },
    )
    assert 'value="Keep Me"' in response.get_data(as_text=True)


def test_returning_participant_logs_in_with_name_and_personal_password(app):
    join(app.test_client(), "Ada", "personal-pass-1")
    client = app.test_client()
    response = post_form(client, "/login", {"display_name": "ADA", "password": "personal-pass-1"})
    assert response.status_code == 302
    assert "Ada" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(("name", "password"), [("Ada", "wrong-password"), ("Nobody", "personal-pass-1"), ("", "")])
def test_login_rejects_wrong_credentials(app, name, password):
    join(app.test_client(), "Ada", "personal-pass-1")
    client = app.test_client()
    response = post_form(client, "/login", {"display_name": name, "password": password})
    assert response.status_code == 400
    assert "Unknown name or wrong password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_event_password_alone_cannot_take_over_a_name(app):
    join(app.test_client(), "Ada", "personal-pass-1")
    intruder = app.test_client()
    response = join(intruder, "Ada", "another-pass-2")
    assert response.status_code == 400
    response = post_form(intruder, "/login", {"display_name": "Ada", "password": EVENT_PASSWORD})
    assert response.status_code == 400


def test_logout_ends_the_session(client):
    join(client)
    response = post_form(client, "/logout", {}, form_url="/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_forms_without_csrf_token_are_refused(client):
    response = client.post("/login", data={"display_name": "Ada", "password": "personal-pass-1"})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)


def test_logout_without_csrf_token_is_refused(client):
    join(client)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_instructor_login_and_wrong_password(app):
    client = app.test_client()
    assert post_form(client, "/instructor/login", {"password": "nope"}).status_code == 400
    assert client.get("/instructor/").status_code == 302
    assert instructor_login(client).status_code == 302
    assert "Recent submissions" in client.get("/instructor/").get_data(as_text=True)


def test_participants_cannot_open_instructor_pages(client):
    join(client)
    assert client.get("/instructor/").status_code == 403


def test_failed_logins_are_rate_limited_per_address(app):
    app.config["LOGIN_ADDRESS_LIMIT"] = 3  # the flood guard (default 1000), here small
    client = app.test_client()
    for _ in range(3):
        assert post_form(client, "/login", {"display_name": "x", "password": "y"}).status_code == 400
    response = post_form(client, "/login", {"display_name": "x", "password": "y"})
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    # the right instructor password is refused too while the address is blocked
    assert post_form(client, "/instructor/login", {"password": INSTRUCTOR_PASSWORD}).status_code == 429
    # another address is not affected
    other = app.test_client()
    token = csrf_token(other, "/login")
    response = other.post(
        "/login",
        data={"csrf_token": token, "display_name": "x", "password": "y"},
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )
    assert response.status_code == 400


def test_session_cookie_is_httponly_and_samesite(client):
    response = join(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_static_files_leave_the_session_cookie_alone(client):
    """A style still loading from the last page must not bring an old session back over a new one."""
    join(client)
    assert "session=" in client.get("/").headers.get("Set-Cookie", "")  # pages refresh the permanent session
    static = client.get("/static/style.css")
    assert static.status_code == 200 and "Set-Cookie" not in static.headers


def test_passwords_are_stored_hashed(app):
    from sqlalchemy import select

    from server.db import new_session
    from server.models import EventSettings, Participant

    join(app.test_client(), "Ada", "personal-pass-1")
    with new_session(app) as db:
        participant = db.scalars(select(Participant)).one()
        settings = db.get(EventSettings, 1)
    assert participant.password_hash.startswith("$argon2id$")
    assert "personal-pass-1" not in participant.password_hash
    assert settings.event_password_hash.startswith("$argon2id$")


def test_open_redirect_after_login_is_refused(app):
    join(app.test_client(), "Ada", "personal-pass-1")
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login?next=//evil.example/x",
        data={"csrf_token": token, "display_name": "Ada", "password": "personal-pass-1"},
    )
    assert response.headers["Location"] == "/"


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_display_names_are_escaped_everywhere(app):
    client = app.test_client()
    name = "Bob's <b>"  # the apostrophe is allowed in names; markup characters are refused
    response = post_form(
        client,
        "/join",
        {"event_password": EVENT_PASSWORD, "display_name": name, "password": "x" * 8, "password_confirm": "x" * 8},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "&lt;b&gt;" in page and "<b>" not in page
    join(client, "O'Brien")
    assert "O&#39;Brien" in client.get("/").get_data(as_text=True)
