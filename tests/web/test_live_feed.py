"""The submission page's live stream (server/live_feed.py, GET /submissions/<id>/events) and the page's live bits:
authorisation, what each event carries as the worker writes progress, the end on the verdict, the stream limit,
and a page without meta refresh that still shows everything without JavaScript (issue 14, points 3 and 7)."""

from __future__ import annotations

import json
from datetime import timedelta

from factories import instructor_login, login_client, make_participant, make_submission

from grader.executor import ClaimedJob
from grader.grading import GradeResult, Progress
from server.db import new_session
from server.job_store import DatabaseJobStore
from server.live_feed import LiveTiming, event_stream, live_slots, log_change
from server.models import Submission, utcnow

TOKEN = "claim-token-of-the-test"
EPOCH = {"epoch": 1, "seconds": 2.0, "metrics": {"loss": 0.69, "val_loss": 0.7, "auc": 0.61, "val_auc": 0.58}}
TRACEBACK = 'Traceback (most recent call last):\n  File "submission.py", line 2, in train\nValueError: boom\n'


def events_of(body: str) -> list[tuple[str, dict]]:
    """(event name, data) of every event in an event-stream body."""
    found = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def running(app, participant: int, **fields) -> tuple[int, ClaimedJob]:
    """A job a worker holds, as after its claim."""
    values = {"status": "running", "claim_token": TOKEN, "started_at": utcnow() - timedelta(seconds=65)}
    submission = make_submission(app, participant, **(values | fields))
    return submission, ClaimedJob(submission, TOKEN, "", "cnn-from-scratch", "synthetic")


def test_others_get_404_from_the_stream_and_the_curves(app):
    ada, bo = make_participant(app, "Ada"), make_participant(app, "Bo")
    submission, _ = running(app, ada)
    for url in (f"/submissions/{submission}/events", f"/submissions/{submission}/curves"):
        assert login_client(app, bo).get(url).status_code == 404
        assert login_client(app, ada).get(url).status_code == 200
    assert login_client(app, bo).get("/submissions/999999/events").status_code == 404


def test_progress_reaches_the_stream_as_the_worker_writes_it_and_the_verdict_ends_it(app):
    ada = make_participant(app, "Ada")
    submission, job = running(app, ada, log="Epoch 1/3\n")
    store = DatabaseJobStore(app)
    steps = iter(
        [
            lambda: store.report_progress(job, Progress("Epoch 1/3\nloading the data\n", [])),
            lambda: store.report_progress(job, Progress("Epoch 1/3\nloading the data\n", [EPOCH])),
            lambda: None,  # nothing changed: nothing is sent
            lambda: store.record_result(
                job, GradeResult(status="done", public_score=0.61, log="all done", history=[EPOCH])
            ),
        ]
    )
    polls = []

    def worker_writes(seconds: float) -> None:  # between two reads of the stream, the worker writes
        polls.append(seconds)
        next(steps)()

    timing = LiveTiming(poll_seconds=0.25, max_seconds=3600)
    body = "".join(event_stream(app, submission, timing, sleep=worker_writes))
    events = events_of(body)
    assert body.startswith("retry: ")
    assert [name for name, _ in events] == ["status", "log", "log", "epochs", "status", "log", "verdict"]
    assert events[0][1]["status"] == "running" and 64 <= events[0][1]["elapsed"] < 120
    assert events[1][1] == {"replace": "Epoch 1/3\n"}  # a stream's first look replaces what the page has
    assert events[2][1] == {"append": "loading the data\n"}  # then only the new lines
    assert events[3][1]["count"] == 1 and 'role="img"' in events[3][1]["html"] and "0.6900" in events[3][1]["html"]
    assert events[4][1] == {"status": "done", "queue_position": None, "eta": None}
    assert events[6][1] == {"status": "done"}
    assert polls == [0.25] * 4  # the row is read every poll period, and the stream ended with the verdict


def test_a_finished_submission_sends_its_verdict_at_once(app):
    app.config["SUBMISSION_STREAM_SECONDS"] = 3600  # the verdict ends the stream, not the clock
    ada = make_participant(app, "Ada")
    done = make_submission(app, ada, status="done", public_score=0.7, log="bye", history=[EPOCH])
    body = login_client(app, ada).get(f"/submissions/{done}/events")
    assert body.mimetype == "text/event-stream" and body.headers["Cache-Control"] == "no-cache"
    names = [name for name, _ in events_of(body.get_data(as_text=True))]
    assert names == ["status", "log", "epochs", "verdict"]


def test_a_queued_submission_streams_its_place_and_nothing_private(app):
    ada = make_participant(app, "Ada")
    make_submission(app, make_participant(app, "Bo"))
    queued = make_submission(app, ada)
    body = login_client(app, ada).get(f"/submissions/{queued}/events").get_data(as_text=True)
    (name, status), *_ = events_of(body)
    assert name == "status" and status["status"] == "queued" and status["queue_position"] == 2
    assert "private" not in body and "score" not in body


def test_past_the_stream_limit_the_page_is_told_to_poll(app):
    app.config["SUBMISSION_MAX_STREAMS"] = 1
    ada = make_participant(app, "Ada")
    submission, _ = running(app, ada)
    slots = live_slots(app)
    assert slots.take()
    refused = login_client(app, ada).get(f"/submissions/{submission}/events")
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    slots.give_back()
    stream = login_client(app, ada).get(f"/submissions/{submission}/events")
    assert stream.status_code == 200 and not slots.take()  # the stream holds the only slot
    stream.get_data()
    stream.close()
    assert slots.take()  # the finished stream gave its slot back
    slots.give_back()


def test_log_changes_append_replace_and_follow_a_sliding_window():
    assert log_change(None, "") is None and log_change(None, "a\n") == {"replace": "a\n"}
    assert log_change("a\n", "a\n") is None
    assert log_change("a\n", "a\nb\n") == {"append": "b\n"}
    assert log_change("a\nb\n", "x\n") == {"replace": "x\n"}
    lines = "".join(f"line {n:05d}\n" for n in range(3000))
    old, new = lines[:20000], lines[300:20300]  # the worker keeps the last 20,000 characters
    change = log_change(old, new)
    assert change == {"append": lines[20000:20300], "keep": 20000}
    assert (old + change["append"])[-change["keep"] :] == new
    same = "step\n" * 5000  # the window slid over identical lines: no unique anchor, so the whole tail
    assert log_change(same[:20000], same[:19995] + "done\n") == {"replace": same[:19995] + "done\n"}


def test_the_running_page_is_live_without_meta_refresh_and_readable_without_javascript(app):
    ada = make_participant(app, "Ada")
    submission, _ = running(app, ada, log="Epoch 1/3\n", history=[EPOCH])
    page = login_client(app, ada).get(f"/submissions/{submission}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert f'data-events="/submissions/{submission}/events"' in page and "submission.js" in page
    assert "<noscript><small>(reload the page to see the latest)</small></noscript>" in page
    assert "running for 1 min 0" in page and "of the 3 min 00 s limit" in page
    assert "Epoch 1/3" in page and 'id="curves-0"' in page and "0.6900" in page
    assert f'href="/exercises/cnn-from-scratch?restore=1&amp;from={submission}"' in page
    assert 'class="local-time' in page and "UTC</time>" in page


def test_a_finished_page_does_not_stream_and_shows_the_traceback_once(app):
    ada = make_participant(app, "Ada")
    failed = make_submission(
        app,
        ada,
        status="failed",
        error_kind="runtime_error",
        error_message="ValueError: boom",
        traceback=TRACEBACK,
        log="Epoch 1/3\n" + TRACEBACK,
        finished_at=utcnow(),
    )
    page = login_client(app, ada).get(f"/submissions/{failed}").get_data(as_text=True)
    assert "data-events" not in page and "noscript" not in page
    assert page.count("Traceback (most recent call last)") == 1
    assert "the traceback is shown above" in page and "Epoch 1/3" in page


def test_the_instructor_may_follow_any_submission_but_gets_no_resubmit_link(app, client):
    submission, _ = running(app, make_participant(app, "Ada"))
    instructor_login(client)
    assert client.get(f"/submissions/{submission}/events").status_code == 200
    assert "Edit and resubmit" not in client.get(f"/submissions/{submission}").get_data(as_text=True)


def test_the_curves_fragment_is_what_the_page_includes(app):
    ada = make_participant(app, "Ada")
    submission, job = running(app, ada)
    client = login_client(app, ada)
    assert client.get(f"/submissions/{submission}/curves").get_data(as_text=True).strip() == ""
    DatabaseJobStore(app).report_progress(job, Progress("", [EPOCH, {**EPOCH, "epoch": 2}]))
    fragment = client.get(f"/submissions/{submission}/curves").get_data(as_text=True)
    assert fragment.count("<svg") == 2 and fragment.count("<tr>") == 3
    with new_session(app) as db:
        assert len(db.get(Submission, submission).history) == 2
