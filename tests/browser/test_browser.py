"""A real browser (Debian's Chromium driven by Playwright) against a real `workshop serve` on loopback."""

from __future__ import annotations

import time

import pytest
from browser_kit import shot, workshop_env
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


@pytest.fixture
def live_env(tmp_path, data_dir) -> dict:
    """These tests run the server as shipped: warm slots on (browser_kit turns them off for the page tests)."""
    return workshop_env(tmp_path, data_dir, WORKSHOP_WARM_SLOTS="1")


def test_join_submit_and_see_the_score_in_a_browser(live_server, page):
    page.goto(live_server + "/")
    assert "/join" in page.url  # a newcomer lands on Join (the event password is all they have)
    page.fill("input[name=event_password]", EVENT_PASSWORD)
    page.fill("input[name=display_name]", "Browser Ada")
    page.fill("input[name=password]", "personal-pass-1")
    page.fill("input[name=password_confirm]", "personal-pass-1")
    shot(page, "01-join")
    page.click("button:has-text('Join')")
    assert page.is_visible("text=Welcome, Browser Ada")
    shot(page, "02-exercises")

    page.click("text=Look at the data")
    assert page.is_visible("text=ABCD rule")
    assert "def train(data)" in page.input_value("textarea[name=code]")
    page.wait_for_selector(".CodeMirror .cm-keyword")  # the editor highlights Python
    assert "def train(data)" in page.inner_text(".CodeMirror")
    shot(page, "03-exercise")
    page.click("button:has-text('Submit')")
    assert "/submissions/" in page.url
    shot(page, "04-queued")

    for _ in range(240):
        if page.is_visible("text=Public ROC AUC") or page.is_visible(".failure"):
            break
        time.sleep(1)
        page.reload()
    shot(page, "05-done")
    assert page.is_visible("text=Public ROC AUC"), page.inner_text("main")[:2000]
    assert page.is_visible("text=Per-epoch metrics")

    page.click("text=See the leaderboard")
    assert page.is_visible("td:has-text('Browser Ada')")
    shot(page, "06-leaderboard")


def test_instructor_sees_the_overview(live_server, page, tmp_path):
    """The overview lists the worker slots: the live one idle, and a paused one with its reason, in red."""
    import sqlite3

    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    with sqlite3.connect(database) as db:  # a slot of another worker that paused itself
        db.execute(
            "INSERT INTO worker_slots (name, state, reason, jobs_done, infrastructure_failures, started_at, "
            "heartbeat_at) VALUES ('gpu-box:4242:slot-1', 'paused', 'paused for 60 s after 3 infrastructure "
            "failures in a row; last: CUDA error: out of memory', 7, 3, datetime('now'), datetime('now'))"
        )
    page.goto(live_server + "/instructor/login")
    page.fill("input[name=password]", INSTRUCTOR_PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.is_visible("text=Recent submissions")
    for _ in range(50):  # the local slot reports itself when it starts
        if page.is_visible("#slots .state-idle"):
            break
        time.sleep(0.2)
        page.reload()
    assert page.is_visible("#slots .state-idle")
    paused = page.inner_text("#slots tr.slot-paused")
    assert "gpu-box:4242:slot-1" in paused and "CUDA error: out of memory" in paused
    assert not page.is_visible("#no-slots")
    shot(page, "07-instructor")


TRIVIAL = """
import keras


def train(data):
    size = data.image_size
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, outputs)
"""


def test_the_notebook_snippet_submits_and_waits_for_the_score(live_server, page, tmp_path, monkeypatch):
    """Make a token in the browser, then run the snippet from the page exactly as a notebook would."""
    page.goto(live_server + "/join")
    page.fill("input[name=event_password]", EVENT_PASSWORD)
    page.fill("input[name=display_name]", "Notebook Nora")
    page.fill("input[name=password]", "personal-pass-1")
    page.fill("input[name=password_confirm]", "personal-pass-1")
    page.click("button:has-text('Join')")
    page.click("nav >> text=Notebook")
    page.click("button:has-text('Make a notebook token')")
    token = page.inner_text("#token").strip()
    snippet = page.inner_text("pre.code >> nth=1")
    shot(page, "08-notebook")
    assert token.startswith("ws_") and f'TOKEN = "{token}"' in snippet and f'SERVER = "{live_server}"' in snippet

    monkeypatch.chdir(tmp_path)
    (tmp_path / "submission.py").write_text(TRIVIAL)
    notebook: dict = {}
    exec(compile(snippet, "notebook-cell", "exec"), notebook)  # noqa: S102 - the page's own snippet, on loopback
    job = notebook["submit"]("cnn-from-scratch")
    assert job["status"] == "done", job
    assert 0.0 <= job["public_score"] <= 1.0
    board = notebook["call"]("/api/leaderboard/cnn-from-scratch")
    assert [row["display_name"] for row in board["rows"]] == ["Notebook Nora"]
    with pytest.raises(RuntimeError, match="SyntaxError at line 1"):
        notebook["call"]("/api/exercises/cnn-from-scratch/submissions", {"code": "def train(:"})
