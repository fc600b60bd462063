"""The submission page in a real browser against a real `workshop serve`: progress the worker writes (log lines,
epochs) and then the verdict appear without a reload, the reader's scroll position and log position are kept,
the pictures carry text alternatives, a refused stream falls back to polling, and a 390-px phone does not scroll
sideways (issue 14, points 2, 3 and 7)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from browser_kit import join_in_browser, live_server, page, shot, workshop_env
from paths import PROJECT_ROOT
from sqlalchemy import select

from grader.executor import ClaimedJob
from grader.grading import GradeResult, Progress
from server import create_app
from server.db import new_session
from server.job_store import DatabaseJobStore
from server.models import Participant, Submission, utcnow

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]
__all__ = ["live_server", "page"]  # fixtures used by name

TOKEN = "claim-token-of-the-browser-test"
LOG = "".join(f"loading shard {n:02d} of the training images\n" for n in range(60))  # taller than the log box
ROC = [[0.0, 0.0], [0.05, 0.45], [0.15, 0.7], [0.4, 0.9], [1.0, 1.0]]
FIGURES = {"roc": ROC, "operating_point": [0.15, 0.7], "confusion": {"tp": 14, "fn": 6, "fp": 12, "tn": 68}}
MEASURES = {"roc_auc": 0.8412, "sensitivity": 0.7, "specificity": 0.85, "accuracy": 0.82, "count": 100}


def epoch(number: int) -> dict:
    """One per-epoch record as the harness reports it."""
    losses = {"loss": 0.7 / number, "val_loss": 0.75 / number}
    return {
        "epoch": number,
        "seconds": 3.0,
        "metrics": {**losses, "auc": 0.6 + number / 20, "val_auc": 0.55 + number / 20},
    }


@pytest.fixture
def live_db(live_server, tmp_path, data_dir):
    """The live server's database, written from this process as the worker writes it."""
    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    config = {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{database}"}
    return create_app({**config, "DATA_DIR": str(data_dir), "EXERCISES_DIR": str(PROJECT_ROOT / "exercises")})


def running_job(app, name: str, history: list) -> ClaimedJob:
    """A job a worker holds for ``name`` (its lease far ahead, so no slot touches it)."""
    with new_session(app) as db:
        participant = db.scalar(select(Participant.id).where(Participant.display_name == name))
        submission = Submission(
            participant_id=participant,
            exercise_slug="cnn-from-scratch",
            dataset="synthetic",
            code="def train(data):\n    pass\n",
            status="running",
            claim_token=TOKEN,
            started_at=utcnow() - timedelta(seconds=42),
            lease_expires_at=utcnow() + timedelta(hours=1),
            log=LOG,
            history=history,
        )
        db.add(submission)
        db.commit()
        return ClaimedJob(submission.id, TOKEN, submission.code, "cnn-from-scratch", "synthetic")


def wait_for(page, script: str, seconds: float = 10) -> None:
    """Poll ``script`` until true (wait_for_function evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {seconds} s: {script}"
        time.sleep(0.05)


def log_scroll(page) -> dict:
    return page.evaluate(
        "(() => { const b = document.getElementById('log');"
        " return {top: b.scrollTop, bottom: b.scrollHeight - b.scrollTop - b.clientHeight}; })()"
    )


def assert_text_alternatives(page) -> None:
    """Every picture is role=img, labelled by a title and a description with words in them."""
    labels = page.evaluate(
        "Array.from(document.querySelectorAll('svg')).map((svg) => [svg.getAttribute('role'),"
        " (svg.getAttribute('aria-labelledby') || '').split(' ').map((id) => document.getElementById(id)"
        " ? document.getElementById(id).textContent : '')])"
    )
    assert labels
    for role, texts in labels:
        assert role == "img" and len(texts) == 2 and all(len(text) > 10 for text in texts), (role, texts)


def test_progress_and_the_verdict_arrive_without_a_reload_keeping_the_readers_place(live_server, live_db, page):
    join_in_browser(page, live_server, "Ada")
    job = running_job(live_db, "Ada", [epoch(1)])
    store = DatabaseJobStore(live_db)
    page.goto(f"{live_server}/submissions/{job.submission_id}")
    page.wait_for_selector("#live-note:has-text('updates live')")
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    assert "running for 4" in page.inner_text("#elapsed") and "s of the 3 min 00 s limit" in page.inner_text("#elapsed")
    assert log_scroll(page)["bottom"] <= 2  # the log box opens at its newest line
    page.evaluate("window.__marker = 1")
    page.evaluate("document.getElementById('log').scrollIntoView()")
    where = page.evaluate("window.scrollY")
    assert where > 200

    store.report_progress(job, Progress(LOG + "Epoch 2/3 - the newest line\n", [epoch(1), epoch(2)]))
    wait_for(page, "document.getElementById('log').textContent.includes('the newest line')")
    wait_for(page, "document.querySelectorAll('#history-table tr').length === 3")
    assert page.evaluate("window.__marker") == 1 and page.evaluate("window.scrollY") == where
    assert log_scroll(page)["bottom"] <= 2  # it followed the new line
    shot(page, "live-submission-running")

    page.evaluate("(() => { const b = document.getElementById('log'); b.scrollTop = 0;"
                  " b.dispatchEvent(new Event('scroll')); })()")  # fmt: skip
    store.report_progress(job, Progress(LOG + "Epoch 2/3 - the newest line\nEpoch 3/3\n", [epoch(1), epoch(2)]))
    wait_for(page, "document.getElementById('log').textContent.includes('Epoch 3/3')")
    assert log_scroll(page)["top"] == 0 and page.is_visible("#log-newest")  # the reader scrolled up: left there

    metrics = {"public": MEASURES, "figures": {"public": FIGURES}}
    result = GradeResult(status="done", public_score=0.8412, metrics=metrics, history=[epoch(1), epoch(2), epoch(3)],
                         log=LOG + "Epoch 3/3\ndone\n", seconds=51.0)  # fmt: skip
    assert store.record_result(job, result)
    page.wait_for_selector("#roc-public", timeout=10_000)
    assert page.evaluate("window.__marker") == 1 and page.evaluate("window.scrollY") == where
    assert "0.8412" in page.inner_text("#score") and "done" in page.inner_text("#status")
    assert "Of 20 melanomas, the model caught 14 and missed 6." in page.inner_text("#pictures-public")
    assert page.locator("#history-table tr").count() == 4
    assert "(your time)" in page.inner_text("#times")  # event.js turned the new times into local ones
    assert_text_alternatives(page)
    shot(page, "live-submission-verdict")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "live-submission-done-top")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("#roc-public")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    shot(page, "live-submission-390px")


@pytest.fixture
def live_env(request, tmp_path, data_dir) -> dict:
    """For the polling test, no live stream at all: every page polls (what a page past the stream limit does)."""
    if "polls" in request.node.name:
        return workshop_env(tmp_path, data_dir, WORKSHOP_SUBMISSION_MAX_STREAMS="0")
    return workshop_env(tmp_path, data_dir)


def test_past_the_stream_limit_the_page_polls_and_still_updates(live_server, live_db, page):
    join_in_browser(page, live_server, "Bo")
    job = running_job(live_db, "Bo", [])
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/submissions/{job.submission_id}")
    page.wait_for_selector("#live-note:has-text('checks every few seconds')")
    page.evaluate("window.__marker = 1")
    DatabaseJobStore(live_db).report_progress(job, Progress(LOG + "polled line\n", [epoch(1)]))
    wait_for(page, "document.getElementById('log').textContent.includes('polled line')")
    wait_for(page, "document.getElementById('curves-0') !== null")
    assert page.evaluate("window.__marker") == 1
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert_text_alternatives(page)
    shot(page, "live-submission-polling-390px")
