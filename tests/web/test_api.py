"""The notebook API: tokens made once on /account, bearer auth only, the same checks and limits as the web form."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from factories import login_client, make_participant, post_form
from sqlalchemy import select

from server.db import new_session
from server.models import LoginThrottle, Participant, Submission

SLUG = "cnn-from-scratch"
TRAIN = "def train(data):\n    return None\n"


def make_token(client) -> str:
    """Press the button on /account, as a participant would, and read the token shown once."""
    response = post_form(client, "/account/token", {}, form_url="/account", follow_redirects=True)  # POST/redirect/GET
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    match = re.search(r'<pre class="code" id="token">(ws_[\w-]+)</pre>', page)
    assert match, page[:2000]
    return match.group(1)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def nora(app) -> int:
    """A participant (stored directly: the join form is tested elsewhere)."""
    return make_participant(app, "Nora Notebook")


@pytest.fixture
def token(app, nora):
    return make_token(login_client(app, nora))


@pytest.fixture
def api(app):
    """A client with no cookies at all: what a notebook is."""
    return app.test_client(use_cookies=False)


def submissions_of(app, participant_id: int) -> list[Submission]:
    with new_session(app) as db:
        return list(db.scalars(select(Submission).where(Submission.participant_id == participant_id)))


def token_hash_of(app, participant_id: int) -> str | None:
    with new_session(app) as db:
        return db.get(Participant, participant_id).api_token_hash


def test_the_token_is_shown_once_and_stored_only_as_a_hash(app, nora):
    client = login_client(app, nora)
    assert "Make a notebook token" in client.get("/account").get_data(as_text=True)
    token = make_token(client)
    page = client.get("/account").get_data(as_text=True)
    assert token not in page and "Make a new token" in page
    stored = token_hash_of(app, nora)
    assert stored == hashlib.sha256(token.encode()).hexdigest() and token not in stored


def test_submit_follow_and_list_with_a_token(app, api, nora, token):
    response = api.post(
        f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN, "filename": "nb.py"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (
        body["status"] == "queued" and body["exercise"] == SLUG and body["url"].endswith(f"/submissions/{body['id']}")
    )
    assert response.headers["Location"] == f"/api/submissions/{body['id']}"
    followed = api.get(f"/api/submissions/{body['id']}", headers=bearer(token)).get_json()
    assert followed["id"] == body["id"] and followed["queue_position"] == 1
    listed = api.get(f"/api/exercises/{SLUG}/submissions", headers=bearer(token)).get_json()["submissions"]
    assert [row["id"] for row in listed] == [body["id"]]
    [stored] = submissions_of(app, nora)
    assert stored.code == TRAIN and stored.filename == "nb.py"


def test_raw_body_and_file_upload_are_accepted_too(app, api, nora, token):
    app.config["MAX_OPEN_SUBMISSIONS"] = 2
    raw = api.post(
        f"/api/exercises/{SLUG}/submissions", data=TRAIN, content_type="text/x-python", headers=bearer(token)
    )
    assert raw.status_code == 201, raw.get_json()
    upload = api.post(
        f"/api/exercises/{SLUG}/submissions",
        data={"file": (io.BytesIO(TRAIN.encode()), "mine.py")},
        headers=bearer(token),
    )
    assert upload.status_code == 201, upload.get_json()
    assert sorted(row.filename or "" for row in submissions_of(app, nora)) == ["", "mine.py"]


def test_exercises_and_leaderboard(api, token):
    exercises = api.get("/api/exercises", headers=bearer(token)).get_json()["exercises"]
    first = {key: exercises[0][key] for key in ("slug", "title", "image_size", "time_limit")}
    assert first == {"slug": SLUG, "title": exercises[0]["title"], "image_size": 96, "time_limit": 180}
    # the event state each exercise carries (open, deadline, quota) is tested in tests/event/test_event_api.py
    board = api.get(f"/api/leaderboard/{SLUG}", headers=bearer(token)).get_json()
    assert board["exercise"] == SLUG and board["rows"] == []  # its other fields: tests/event/test_event_api.py
    assert api.get("/api/leaderboard/nope", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": {"code": "def train(data:\n"}}, 400, "SyntaxError at line 1"),
        ({"json": {"code": ""}}, 400, "empty"),
        ({"json": {"source": TRAIN}}, 400, '{"code": "def train(data): ..."}'),
        ({"json": ["not", "an", "object"]}, 400, '{"code": "def train(data): ..."}'),
        ({"data": b"\xff\xfe not utf-8", "content_type": "text/x-python"}, 400, "UTF-8"),
        ({"data": {"file": (io.BytesIO(TRAIN.encode()), "notes.txt")}}, 400, "ending in .py"),
        ({"json": {"code": "#" * (300 * 1024)}}, 400, "at most 262144 are accepted"),
        ({"data": b"#" * (2 * 1024 * 1024), "content_type": "text/x-python"}, 413, "too large"),
    ],
)
def test_bad_submissions_get_a_clear_json_error_and_queue_nothing(app, api, nora, token, kwargs, status, message):
    response = api.post(f"/api/exercises/{SLUG}/submissions", headers=bearer(token), **kwargs)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["status"] == status and message in error["message"], error
    assert submissions_of(app, nora) == []


def test_unknown_exercise_is_a_json_404(api, token):
    response = api.post("/api/exercises/nope/submissions", json={"code": TRAIN}, headers=bearer(token))
    assert response.status_code == 404 and "nope" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer "}])
def test_without_a_token_the_api_answers_401(api, headers):
    response = api.get("/api/exercises", headers=headers)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.get_json()["error"]["message"]


def test_the_session_cookie_alone_opens_nothing(app):
    """A logged-in browser gets nothing from /api/: so a page on another site cannot submit as its user."""
    carl = make_participant(app, "Cookie Carl")
    client = login_client(app, carl)
    assert client.get("/api/exercises").status_code == 401
    assert client.post(f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN}).status_code == 401
    assert submissions_of(app, carl) == []


def test_wrong_tokens_are_rate_limited_and_a_valid_token_still_works(app, api, token):
    app.config["LOGIN_TOKEN_LIMIT"] = 3
    for _ in range(3):
        assert api.get("/api/exercises", headers=bearer("ws_guess")).status_code == 401
    with new_session(app) as db:
        assert db.get(LoginThrottle, ("token", "127.0.0.1")).failures == 3
    response = api.get("/api/exercises", headers=bearer("ws_guess"))
    assert response.status_code == 429 and response.get_json()["error"]["code"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) > 0
    assert api.get("/api/exercises", headers=bearer(token)).status_code == 200  # never refused for others' typos


def test_a_new_token_replaces_the_old_one(app, api, nora):
    client = login_client(app, nora)
    old = make_token(client)
    new = make_token(client)
    assert old != new
    assert api.get("/api/exercises", headers=bearer(old)).status_code == 401
    assert api.get("/api/exercises", headers=bearer(new)).status_code == 200


def test_one_participant_cannot_read_anothers_submission(app, api, token):
    created = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN}, headers=bearer(token)).get_json()
    other = login_client(app, make_participant(app, "Otto Other"))
    other_token = make_token(other)
    response = api.get(f"/api/submissions/{created['id']}", headers=bearer(other_token))
    assert response.status_code == 404 and "error" in response.get_json()
    assert api.get(f"/api/exercises/{SLUG}/submissions", headers=bearer(other_token)).get_json() == {"submissions": []}


def test_the_queue_limit_holds_for_the_api_too(app, api, token):
    """One open job per participant by default (fair turns); WORKSHOP_MAX_OPEN_SUBMISSIONS allows more."""
    first = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN}, headers=bearer(token))
    assert first.status_code == 201
    response = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN}, headers=bearer(token))
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "too_many_open" and "waiting or running" in error["message"]
    app.config["MAX_OPEN_SUBMISSIONS"] = 2
    second = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": TRAIN}, headers=bearer(token))
    assert second.status_code == 201


def test_making_a_token_needs_a_participant_and_a_csrf_token(app, nora):
    anonymous = app.test_client()
    assert anonymous.post("/account/token").status_code in (302, 400)
    client = login_client(app, nora)
    assert client.post("/account/token").status_code == 400  # no CSRF token
    assert token_hash_of(app, nora) is None


def test_the_notebook_page_shows_the_snippet_with_this_server(app, nora):
    page = login_client(app, nora).get("/account").get_data(as_text=True)
    assert 'SERVER = "http://localhost"' in page and "def submit(exercise" in page
    assert f'submit("{SLUG}")' in page
