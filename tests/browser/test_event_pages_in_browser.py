"""The event's pages in a real browser: the instructor closes an exercise and sets a deadline (from a browser in
another time zone), the participant sees the closed state and the live countdown and marks a submission final."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from browser_kit import SCREENSHOTS, instructor_in_browser, join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

CLOSED, TIMED = "cnn-from-scratch", "fine-tuning"
ZONE = "Europe/Berlin"


def _database(tmp_path):
    return next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())


def _instructor_sets_up_the_event(participant_page, url: str) -> None:
    context = participant_page.context.browser.new_context(timezone_id=ZONE, viewport={"width": 1200, "height": 900})
    teacher = context.new_page()
    instructor_in_browser(teacher, url)
    teacher.click("#run-the-event")
    teacher.click(f"#exercise-{CLOSED} button[name=toggle]")
    assert teacher.is_visible("text=submissions closed")
    local = (datetime.now(ZoneInfo(ZONE)) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    teacher.fill(f"#exercise-{TIMED} input[name=when]", local)
    teacher.click(f"#exercise-{TIMED} button:has-text('Set deadline')")
    assert teacher.is_visible("text=deadline")
    assert "closed" in teacher.inner_text(f"#exercise-{CLOSED} .pill")
    assert re.search(r"closes in 1 h 5\d min", teacher.inner_text(f"#exercise-{TIMED}")), "deadline not 2 h away"
    shot(teacher, "event-instructor")
    context.close()


def test_instructor_closes_and_sets_a_deadline_participant_sees_it_and_marks_a_final(
    live_server,  # noqa: F811 - the fixture imported above
    page,  # noqa: F811
    tmp_path,
):
    _instructor_sets_up_the_event(page, live_server)
    join_in_browser(page, live_server, "Countdown Cleo")

    page.goto(f"{live_server}/exercises/{CLOSED}")
    assert page.is_visible("text=Submissions are closed")
    assert page.is_disabled("#submit") and "closed" in page.inner_text("#blocked-reason")
    page.locator("#blocked-reason").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "event-closed-submit.png"))

    page.goto(f"{live_server}/exercises/{TIMED}")
    assert page.is_visible("text=Submissions are open") and page.is_enabled("#submit")
    first = page.inner_text(".countdown")
    assert re.fullmatch(r"closes in 1 h 5\d min \d\d s", first), first
    time.sleep(1.5)
    assert page.inner_text(".countdown") != first  # it ticks

    with sqlite3.connect(_database(tmp_path)) as db:
        (participant,) = db.execute("SELECT id FROM participants WHERE display_name = 'Countdown Cleo'").fetchone()
        db.execute(
            "INSERT INTO submissions (participant_id, exercise_slug, dataset, code, status, public_score, attempts, "
            "final, created_at, started_at, finished_at) VALUES (?, ?, 'synthetic', 'def train(data): pass', 'done', "
            "0.8123, 1, 0, datetime('now'), datetime('now'), datetime('now'))",
            (participant, TIMED),
        )
        (submission,) = db.execute("SELECT max(id) FROM submissions").fetchone()
    page.goto(f"{live_server}/submissions/{submission}")
    page.click("#mark-final")
    page.wait_for_selector("#unmark-final", timeout=15_000)  # the POST and its redirect back have landed
    assert page.is_visible("text=Marked as final")
    shot(page, "event-submission-final")
    page.goto(f"{live_server}/exercises/{TIMED}")
    assert page.inner_text("table.my-submissions .final-badge") == "final"
    shot(page, "event-participant-exercise")
