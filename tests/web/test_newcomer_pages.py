"""What a new participant tripped over (issue 14, point 7), on the server side: the first visit lands on Join,
the editor opens with their own code, a refused submission is explained beside the editor with its line,
the exercise list shows progress, times say their zone, and the notebook page makes a token by POST/redirect/GET."""

from __future__ import annotations

import html
import re

import pytest
from factories import (
    EVENT_PASSWORD,
    csrf_token,
    instructor_login,
    login_client,
    make_participant,
    make_submission,
    post_form,
    submit_code,
)
from paths import PROJECT_ROOT

from grader.exercises import load_catalog
from server.errors import WorkshopError
from server.progress import error_line

SLUG = "cnn-from-scratch"
STARTER = load_catalog(PROJECT_ROOT / "exercises")[SLUG].starter
MINE = "def train(data):\n    return 'my own edited code'\n"


def editor_text(page: str) -> str:
    """What the exercise page's editor opens with (the textarea's text)."""
    match = re.search(r'<textarea id="code"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, page[:3000]
    return html.unescape(match.group(1))


# ------------------------------------------------------------------------------------------ the first visit


@pytest.mark.parametrize(("path", "landing"), [("/", "/join"), ("/leaderboard", "/join?next=/leaderboard")])
def test_a_newcomer_lands_on_join_not_on_log_in(client, path, landing):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"] == landing
    page = client.get(landing).get_data(as_text=True)
    assert "<h1>Join the workshop</h1>" in page and "event password" in page
    login = re.search(r'<p class="already-joined" id="already-joined">Already joined\? <a href="([^"]+)"', page)
    assert login, "the returning participant's Log in link is at the top"
    assert html.unescape(login.group(1)) == ("/login" if path == "/" else f"/login?next={path}")


def test_joining_goes_on_to_the_page_asked_for_and_instructors_keep_their_login(client):
    target = f"/exercises/{SLUG}?from=7"
    landing = client.get(target).headers["Location"]
    assert landing.startswith("/join?next=")
    form = {"event_password": EVENT_PASSWORD, "display_name": "Newcomer", "password": "pw-123456"}
    joined = post_form(client, landing, form | {"password_confirm": "pw-123456"}, form_url=landing)
    assert joined.status_code == 302 and joined.headers["Location"] == target
    stranger = client.application.test_client()
    assert stranger.get("/instructor/event/").headers["Location"].startswith("/instructor/login?next=")


def test_join_refuses_to_go_on_to_another_site(client):
    landing = "/join?next=//evil.example/x"
    form = {"event_password": EVENT_PASSWORD, "display_name": "Newcomer", "password": "pw-123456"}
    joined = post_form(client, landing, form | {"password_confirm": "pw-123456"}, form_url=landing)
    assert joined.headers["Location"] == "/"


# ------------------------------------------------------------------------------------------ the editor's code


def test_the_editor_opens_with_the_last_submission_else_the_starter(app):
    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    assert editor_text(client.get(f"/exercises/{SLUG}").get_data(as_text=True)) == STARTER
    make_submission(app, ada, code="def train(data):\n    return 'older'\n")
    newest = make_submission(app, ada, code=MINE, status="failed")
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert editor_text(page) == MINE and f'your last submission (<a href="/submissions/{newest}">' in page
    assert 'data-keep-server-code="0"' in page  # the browser's newer draft may replace it
    assert editor_text(client.get(f"/exercises/{SLUG}?restore=1").get_data(as_text=True)) == MINE
    starter = client.get(f"/exercises/{SLUG}?starter=1").get_data(as_text=True)
    assert editor_text(starter) == STARTER and 'data-keep-server-code="1"' in starter


def test_from_opens_only_the_participants_own_submission_of_this_exercise(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    older = make_submission(app, ada, code="def train(data):\n    return 'older'\n")
    make_submission(app, ada, code=MINE)
    other_exercise = make_submission(app, ada, slug="transfer-learning", code="def train(data):\n    'other'\n")
    bobs = make_submission(app, bob, code="def train(data):\n    return 'bob-secret-marker'\n")
    client = login_client(app, ada)
    chosen = client.get(f"/exercises/{SLUG}?from={older}").get_data(as_text=True)
    assert "return 'older'" in editor_text(chosen) and "to edit and resubmit" in chosen
    assert 'data-keep-server-code="1"' in chosen
    for wrong in (bobs, other_exercise, 99999, "x", "-1", "1" * 40):
        page = client.get(f"/exercises/{SLUG}?from={wrong}").get_data(as_text=True)
        assert editor_text(page) == MINE, wrong
        assert "bob-secret-marker" not in page


def test_a_refused_submission_is_explained_beside_the_editor_with_its_line(app):
    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    broken = "import keras\n\n\ndef train(data:\n    return None\n"
    response = submit_code(client, SLUG, broken)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<ul class="errors"' not in page, "not at the top of the page, 1,000 px above the editor"
    alert = re.search(r'<div class="code-error" id="code-error" role="alert" tabindex="-1" data-line="(\d+)">', page)
    assert alert and alert.group(1) == "4"
    form = page[page.index('id="submit-form"') :]
    assert form.index('id="code-error"') < form.index('<textarea id="code"'), "right above the editor"
    assert "SyntaxError at line 4" in page and "line 4 is marked" in page
    assert editor_text(page) == broken and 'data-error-line="4"' in page


def test_the_error_line_comes_from_the_error_else_from_its_message():
    class WithLine(WorkshopError):
        line = 12

    assert error_line(WithLine("SyntaxError at line 3")) == 12
    assert error_line(WorkshopError("SyntaxError at line 3, column 9: invalid syntax")) == 3
    assert error_line(WorkshopError("You already have a submission waiting")) is None


def test_the_editor_is_labelled_and_says_how_to_leave_it(app):
    page = login_client(app, make_participant(app, "Ada")).get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert '<label for="code" id="code-label"' in page and 'aria-describedby="editor-keys"' in page
    keys = re.search(r'<p class="editor-keys muted" id="editor-keys">(.*?)</p>', page, re.S).group(1)
    assert "<kbd>Esc</kbd> then <kbd>Tab</kbd>" in keys and "<kbd>M</kbd>" in keys
    assert 'id="restore-starter"' in page and "Restore the starter code" in page


# ------------------------------------------------------------------------------------------ progress and times


def test_the_exercise_list_shows_each_exercises_progress(app):
    ada = make_participant(app, "Ada")
    make_submission(app, ada, status="done", public_score=0.61)
    make_submission(app, ada, status="done", public_score=0.83, final=True)
    make_submission(app, ada, status="done", public_score=0.99, dataset="an-old-data-set")  # not the active one
    make_submission(app, ada, status="failed")
    make_submission(app, ada, status="cancelled")
    page = login_client(app, ada).get("/").get_data(as_text=True)
    mine = re.search(rf'<li id="exercise-{SLUG}">.*?</li>', page, re.S).group(0)
    words = " ".join(re.sub(r"<[^>]+>", " ", mine).split())
    assert "4 submissions · best public score 0.8300 · 1 final" in words, words
    assert "Not tried yet" in re.search(r'<li id="exercise-transfer-learning">.*?</li>', page, re.S).group(0)


def test_a_visitor_sees_nothing_personal_on_the_list(app, client):
    make_submission(app, make_participant(app, "Ada"), status="done", public_score=0.83)
    instructor_login(client)
    page = client.get("/").get_data(as_text=True)
    assert 'class="progress' not in page and "0.8300" not in page and "Not tried yet" not in page


def test_times_are_time_elements_in_utc_that_say_so(app):
    from datetime import datetime

    ada = make_participant(app, "Ada")
    make_submission(app, ada, status="done", public_score=0.7, created_at=datetime(2026, 5, 4, 13, 5, 9))
    client = login_client(app, ada)
    exercise = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert '<time class="local-time" datetime="2026-05-04T13:05:09Z" data-seconds>13:05:09 UTC</time>' in exercise
    board = client.get(f"/leaderboard/{SLUG}").get_data(as_text=True)
    assert re.search(r'<time class="local-time" datetime="[0-9T:-]+Z" data-seconds>\d\d:\d\d:\d\d UTC</time>', board)
    assert '<div class="table-wrap">' in board


# ------------------------------------------------------------------------------------------ the notebook page


def test_making_a_token_is_post_redirect_get_and_a_reload_makes_none(app):
    from server.db import new_session
    from server.models import Participant

    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    first = client.get("/account")
    assert first.headers["Cache-Control"] == "no-store"
    made = client.post("/account/token", data={"csrf_token": csrf_token(client, "/account")})
    assert made.status_code == 303 and made.headers["Location"] == "/account"
    shown = client.get("/account")
    token = re.search(r'<pre class="code" id="token">(ws_[\w-]+)</pre>', shown.get_data(as_text=True)).group(1)
    assert shown.headers["Cache-Control"] == "no-store" and f'TOKEN = "{token}"' in shown.get_data(as_text=True)
    with new_session(app) as db:
        stored = db.get(Participant, ada).api_token_hash
    reloaded = client.get("/account").get_data(as_text=True)
    assert token not in reloaded and "Make a new token" in reloaded
    with new_session(app) as db:
        assert db.get(Participant, ada).api_token_hash == stored, "a reload makes no new token"


def test_the_notebook_page_has_copy_buttons_and_no_inline_script(app):
    client = login_client(app, make_participant(app, "Ada"))
    client.post("/account/token", data={"csrf_token": csrf_token(client, "/account")})
    page = client.get("/account").get_data(as_text=True)
    assert 'data-copy="token"' in page and 'data-copy="snippet"' in page and "copy.js" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) and " onclick=" not in page
    snippet = html.unescape(re.search(r'<pre class="code snippet" id="snippet">(.*?)</pre>', page, re.S).group(1))
    compile(snippet, "snippet", "exec")
    assert "waiting: number {place} in the queue" in snippet and "s elapsed" in snippet


def test_a_contract_error_marks_the_line_the_check_names(app):
    client = login_client(app, make_participant(app, "Ada"))
    code = "import keras\n\n\ndef train():\n    return None\n"
    page = submit_code(client, SLUG, code).get_data(as_text=True)
    assert 'id="code-error" role="alert" tabindex="-1" data-line="4"' in page and 'data-error-line="4"' in page
    assert editor_text(page) == code
