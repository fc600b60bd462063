"""The workers page and the overview's cancel button in a real browser against `workshop serve`."""

from __future__ import annotations

import sqlite3
import time

import pytest
from browser_kit import instructor_in_browser, join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def database(tmp_path):
    return next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())


def test_instructor_sees_every_slot_and_cancels_a_waiting_job(live_server, page, tmp_path):  # noqa: F811
    join_in_browser(page, live_server, "Queue Quinn")
    page.wait_for_selector("text=Welcome, Queue Quinn")  # the join is stored before the database is read below
    page.context.clear_cookies()
    with sqlite3.connect(database(tmp_path)) as db:
        db.execute(
            "INSERT INTO worker_slots (name, uid, gpu, state, reason, jobs_done, infrastructure_failures, "
            "started_at, heartbeat_at) VALUES ('gpu-box:4242:slot-1', 61007, 1, 'paused', "
            "'paused for 60 s after 3 infrastructure failures in a row', 9, 3, datetime('now'), datetime('now'))"
        )
        participant = db.execute("SELECT id FROM participants WHERE display_name = 'Queue Quinn'").fetchone()[0]
        waiting = db.execute(  # waits for a retry far ahead, so the live slot does not take it
            "INSERT INTO submissions (participant_id, exercise_slug, dataset, code, status, attempts, created_at, "
            "not_before, final, priority, charged) VALUES (?, 'cnn-from-scratch', 'synthetic', 'x = 1', 'queued', 0, "
            "datetime('now', '-90 seconds'), datetime('now', '+1 day'), 0, 0, 1)",
            (participant,),
        ).lastrowid
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/")
    page.click("#workers-link")
    for _ in range(50):  # the live slot reports itself when it starts
        if page.is_visible("#workers tr.slot-idle"):
            break
        time.sleep(0.2)
        page.reload()
    live = page.inner_text("#workers tr.slot-idle")
    assert ":slot-0" in live and "CPU" in live and "s ago" in live
    paused = page.inner_text("#workers tr.slot-paused")
    assert "gpu-box" in paused and "61007" in paused and "3 infrastructure failures" in paused
    assert not page.is_visible("#no-slots")
    # a root `workshop serve` runs its web workers unprivileged, where the sandbox cannot be checked: no false alarm
    assert "not checked by the web process" in page.inner_text("#sandbox-state") and not page.is_visible("#sandbox")
    shot(page, "workers-page")

    models = tmp_path / "keras" / "models"  # the live instance's KERAS_HOME/models
    models.mkdir(parents=True, exist_ok=True)
    models.chmod(0o755), models.parent.chmod(0o755)
    (models / "efficientnetb0_notop.h5").write_bytes(b"weights")
    (models / "efficientnetb0_notop.h5.stand-in").write_text("random init\n")
    page.reload()
    assert "efficientnetb0_notop.h5" in page.inner_text("#stand-in-weights")
    shot(page, "workers-stand-in-warning")

    page.goto(live_server + "/instructor/")
    row = f"#recent tr[data-submission='{waiting}']"
    assert "so far" in page.inner_text(row + " td.waited")
    page.once("dialog", lambda dialog: dialog.dismiss())  # "no" leaves it waiting
    page.click(row + " button:has-text('Cancel')")
    assert page.inner_text(row + " td.status-queued") == "queued"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(row + " button:has-text('Cancel')")
    page.wait_for_selector(f"text=Submission #{waiting} was cancelled")
    assert page.inner_text(row + " td.status-cancelled") == "cancelled"
    shot(page, "overview-cancelled")
