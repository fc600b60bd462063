"""The workers page (every slot: host, uid, GPU, state, job, heartbeat, counts), the warnings across the
instructor's pages, and the overview's waiting times and cancel button."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from factories import csrf_token, instructor_login, login_client, make_participant, make_submission

from server import warnings
from server.db import new_session
from server.models import Submission, WorkerSlot, utcnow


def add_slot(app, name: str, state: str = "idle", seconds_ago: float = 1, **fields) -> None:
    with new_session(app) as db:
        heartbeat = utcnow() - timedelta(seconds=seconds_ago)
        db.add(WorkerSlot(name=name, state=state, heartbeat_at=heartbeat, started_at=heartbeat, **fields))
        db.commit()


@pytest.fixture
def checks(monkeypatch):
    """The sandbox self-check replaced: ``checks.result`` is what it finds, ``checks.calls`` how often it ran."""

    class Checks:
        result = (True, "all rows ok")
        calls = 0

    def fake_check(app):
        Checks.calls += 1
        return Checks.result

    monkeypatch.setattr(warnings, "run_check", fake_check)
    return Checks


def settled(app) -> None:
    """Wait until the background sandbox check (if one started) has stored its result."""
    deadline = time.monotonic() + 10
    while (state := app.extensions.get("sandbox_check")) is not None and state.running:
        assert time.monotonic() < deadline, "the sandbox check did not finish"
        time.sleep(0.01)


def warning_page(app, client, url: str = "/instructor/workers") -> str:
    client.get(url)  # the first look starts the sandbox check in the background
    settled(app)
    return client.get(url).get_data(as_text=True)


@pytest.fixture
def instructor(client):
    instructor_login(client)
    return client


def test_the_workers_page_lists_every_slot_with_all_its_fields(app, instructor, checks):
    participant = make_participant(app)
    running = make_submission(app, participant, status="running")
    add_slot(app, "gpu-box:4242:slot-1", "busy", 3, uid=61001, gpu=1, current_submission_id=running, jobs_done=17)
    add_slot(
        app, "cpu-box:99:slot-0", "paused", 5, uid=61002, reason="paused after 3 failures", infrastructure_failures=3
    )
    add_slot(app, "old-box:7:slot-0", "idle", 900, uid=61003)
    page = instructor.get("/instructor/workers").get_data(as_text=True)
    busy = page.split('data-slot="gpu-box:4242:slot-1"')[1].split("</tr>")[0]
    assert '<td class="host">gpu-box</td>' in busy and '<td class="uid">61001</td>' in busy
    assert '<td class="gpu">1</td>' in busy and "busy" in busy
    assert f'href="/submissions/{running}"' in busy and '<td class="jobs-done">17</td>' in busy
    assert "s ago" in busy
    paused = page.split('data-slot="cpu-box:99:slot-0"')[1].split("</tr>")[0]
    assert '<td class="gpu">CPU</td>' in paused and "paused after 3 failures" in paused
    assert '<td class="failures">3</td>' in paused
    old = page.split('data-slot="old-box:7:slot-0"')[1].split("</tr>")[0]
    assert "silent (idle)" in old and ("900 s ago" in old or "901 s ago" in old)
    assert page.index("cpu-box") < page.index("gpu-box") < page.index("old-box")  # paused, busy, silent


def test_host_comes_from_the_slot_name():
    from server.views.workers import slot_host

    assert slot_host("gpu-box:4242:slot-1") == "gpu-box"
    assert slot_host("::1:17:slot-0") == "::1"
    assert slot_host("odd") == "odd"


def test_participants_may_not_see_the_workers_page_nor_the_warnings(app, checks):
    client = login_client(app, make_participant(app))
    assert client.get("/instructor/workers").status_code == 403
    assert 'id="instructor-warnings"' not in client.get("/exercises").get_data(as_text=True)
    assert checks.calls == 0


def test_no_slot_alive_warns_until_one_reports(app, instructor, checks):
    assert 'id="no-slots"' in warning_page(app, instructor)
    add_slot(app, "box:1:slot-0", "paused", 1)
    add_slot(app, "box:1:slot-1", "busy", 500)  # silent: its worker is gone
    assert 'id="no-slots"' in warning_page(app, instructor)
    add_slot(app, "box:2:slot-0", "idle", 10)
    page = warning_page(app, instructor)
    assert 'id="no-slots"' not in page and 'id="instructor-warnings"' not in page


def test_a_failing_sandbox_check_warns_and_a_passing_one_does_not(app, instructor, checks):
    add_slot(app, "box:1:slot-0")
    checks.result = (False, "probe ran   FAIL  bwrap: setting up uid map: Permission denied\nmore rows")
    page = warning_page(app, instructor)
    assert 'id="sandbox"' in page and "bwrap sandbox check fails" in page and "Permission denied" in page
    assert "Sandbox: <strong>bwrap: FAILS (last checked" in page
    app.extensions.pop("sandbox_check")
    checks.result = (True, "all ok")
    page = warning_page(app, instructor)
    assert 'id="sandbox"' not in page and "Sandbox: <strong>bwrap: passed" in page


def test_a_slot_whose_own_sandbox_check_fails_warns_even_where_the_web_process_cannot_check(
    app, instructor, checks, monkeypatch
):
    """A root serve's web workers are not root: the slots' process checks, and its paused slots tell the page."""
    monkeypatch.setattr(warnings.os, "geteuid", lambda: 1234)
    add_slot(app, "box:1:slot-0")
    page = warning_page(app, instructor)
    assert 'id="sandbox"' not in page and checks.calls == 0
    assert "each worker slot checks when it starts and every 10 minutes" in page
    reason = "sandbox check failed: network: reached 127.0.0.1; no job runs here until it passes again"
    add_slot(app, "box:1:slot-1", "paused", 1, reason=reason)
    add_slot(app, "box:0:slot-0", "paused", 900, reason=reason)  # long silent: its worker is gone
    page = warning_page(app, instructor, "/instructor/")
    assert 'id="sandbox"' in page and "fails on 1 worker slot(s) (box:1:slot-1: sandbox check failed: network" in page


def test_the_sandbox_check_runs_at_most_every_ten_minutes(app, instructor, checks):
    add_slot(app, "box:1:slot-0")
    for _ in range(5):
        warning_page(app, instructor, "/instructor/")
    assert checks.calls == 1
    state = app.extensions["sandbox_check"]
    state.started -= warnings.SANDBOX_CHECK_SECONDS + 1
    warning_page(app, instructor)
    assert checks.calls == 2


def test_without_a_sandbox_the_page_says_so_and_runs_no_check(app, instructor, checks):
    app.config["SANDBOX"] = "none"
    page = warning_page(app, instructor)
    assert 'id="sandbox"' in page and "NO sandbox" in page
    assert checks.calls == 0


def test_stand_in_weights_warn(app, instructor, checks, tmp_path):
    from grader.weights import STAND_IN_SUFFIX, catalog_weights
    from server.catalog import catalog

    add_slot(app, "box:1:slot-0")
    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    item = catalog_weights(catalog(app).values())[0]
    (models / item.file_name).write_bytes(b"weights")
    assert 'id="stand-in-weights"' not in warning_page(app, instructor)
    (models / (item.file_name + STAND_IN_SUFFIX)).write_text("random init\n")
    page = warning_page(app, instructor)
    assert 'id="stand-in-weights"' in page and item.file_name in page


def test_the_overview_shows_waiting_and_running_times(app, instructor, checks):
    participant = make_participant(app)
    created = utcnow() - timedelta(minutes=10)
    done = make_submission(
        app,
        participant,
        status="done",
        created_at=created,
        started_at=created + timedelta(seconds=42),
        finished_at=created + timedelta(seconds=100),
        seconds=57.5,
    )
    queued = make_submission(app, participant, created_at=utcnow() - timedelta(seconds=30))
    page = instructor.get("/instructor/").get_data(as_text=True)
    row = page.split(f'data-submission="{done}"')[1].split("</tr>")[0]
    assert '<td class="waited">42 s</td>' in row and '<td class="ran">57.5 s</td>' in row
    assert "Cancel" not in row
    row = page.split(f'data-submission="{queued}"')[1].split("</tr>")[0]
    assert "s so far" in row and f'action="/instructor/submissions/{queued}/cancel"' in row
    assert "data-confirm=" in row


def test_the_cancel_button_cancels_with_csrf_only(app, instructor, checks):
    participant = make_participant(app)
    queued = make_submission(app, participant)
    url = f"/instructor/submissions/{queued}/cancel"
    assert instructor.post(url).status_code == 400  # no CSRF token
    token = csrf_token(instructor, "/instructor/")
    response = instructor.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200 and f"Submission #{queued} was cancelled" in response.get_data(as_text=True)
    with new_session(app) as db:
        assert db.get(Submission, queued).status == "cancelled"
    again = instructor.post(url, data={"csrf_token": token}, follow_redirects=True)
    assert "already finished" in again.get_data(as_text=True)
    assert instructor.post("/instructor/submissions/999999/cancel", data={"csrf_token": token}).status_code == 404


def test_participants_cannot_cancel(app, checks):
    participant = make_participant(app)
    queued = make_submission(app, participant)
    client = login_client(app, participant)
    token = csrf_token(client, "/account")
    assert client.post(f"/instructor/submissions/{queued}/cancel", data={"csrf_token": token}).status_code == 403
    with new_session(app) as db:
        assert db.get(Submission, queued).status == "queued"


@pytest.mark.sandbox
def test_the_real_check_runs_in_the_background_and_passes_here(app):
    state = warnings.sandbox_check(app)
    settled(app)
    assert state.ok is True, state.detail
    assert "probe ran" in state.detail


def test_a_web_process_without_root_runs_no_check_and_warns_nothing(app, instructor, checks, monkeypatch):
    add_slot(app, "box:1:slot-0")
    monkeypatch.setattr(warnings.os, "geteuid", lambda: 1000)
    page = warning_page(app, instructor)
    assert checks.calls == 0 and 'id="instructor-warnings"' not in page
    assert "not checked by the web process (uid 1000)" in page
