"""The projector's snapshot and event stream: public view only (even for the instructor), frozen, revealed, pushed."""

from __future__ import annotations

import json
from datetime import timedelta

from factories import login_client, make_participant, make_submission

from server.catalog import get_exercise
from server.db import new_session
from server.event import announce, freeze, reveal
from server.models import utcnow
from server.projector_feed import FeedTiming, event_stream, join_url

PRIVATE_A, PRIVATE_B = 0.9123456, 0.8765432


def instructor_client(app):
    client = app.test_client()
    with client.session_transaction() as session:
        session["role"] = "instructor"
    return client


def scored(app, name: str, public: float, private: float, **fields) -> int:
    participant = make_participant(app, name)
    make_submission(app, participant, status="done", public_score=public, private_score=private, **fields)
    return participant


def cnn(snapshot: dict) -> dict:
    return next(entry for entry in snapshot["exercises"] if entry["slug"] == "cnn-from-scratch")


def act(app, action, *args) -> None:
    with app.app_context(), new_session(app) as db:
        action(db, *args)


def test_the_snapshot_has_no_private_figures_before_the_reveal_even_for_the_instructor(app):
    scored(app, "Ada", 0.71, PRIVATE_A)
    scored(app, "Bo", 0.75, PRIVATE_B)
    text = instructor_client(app).get("/projector/snapshot.json").get_data(as_text=True)
    assert "0.9123" not in text and "0.8765" not in text and "private" not in text
    board = cnn(json.loads(text))["board"]
    assert [row["display_name"] for row in board["rows"]] == ["Bo", "Ada"] and board["revealed"] is False

    act(app, reveal, get_exercise_in(app, "cnn-from-scratch"))
    board = cnn(instructor_client(app).get("/projector/snapshot.json").get_json())["board"]
    assert board["revealed"] is True
    assert [(row["display_name"], row["private_score"], row["rank_change"]) for row in board["rows"]] == [
        ("Ada", PRIVATE_A, 1),
        ("Bo", PRIVATE_B, -1),
    ]


def get_exercise_in(app, slug: str):
    with app.test_request_context():
        return get_exercise(slug)


def test_the_board_is_frozen_during_a_freeze(app):
    ada = make_participant(app, "Ada")
    make_submission(
        app, ada, status="done", public_score=0.6, private_score=0.6, finished_at=utcnow() - timedelta(minutes=5)
    )
    act(app, freeze, utcnow() - timedelta(seconds=1))
    make_submission(app, ada, status="done", public_score=0.99, private_score=0.6, finished_at=utcnow())
    snapshot = login_client(app, ada).get("/projector/snapshot.json").get_json()
    board = cnn(snapshot)["board"]
    assert snapshot["frozen"] is True and board["frozen"] is True
    assert [row["public_score"] for row in board["rows"]] == [0.6]  # the late 0.99 stays hidden until unfreeze
    assert "0.99" not in json.dumps(instructor_client(app).get("/projector/snapshot.json").get_json())


def test_the_snapshot_shows_queue_announcement_deadline_and_join_url(app):
    ada = make_participant(app, "Ada")
    make_submission(app, ada)  # queued
    act(app, announce, "Pizza at <b>noon</b>")
    snapshot = login_client(app, ada).get("/projector/snapshot.json").get_json()
    assert snapshot["queue_length"] == 1 and snapshot["announcement"] == "Pizza at <b>noon</b>"
    assert snapshot["join_url"] == "http://localhost/join" and cnn(snapshot)["deadline"] is None
    app.config["PUBLIC_URL"] = "https://short.example/dl"
    assert join_url(app, "http://localhost/") == "https://short.example/dl"


def test_the_page_shows_the_qr_code_and_needs_a_login(app):
    ada = make_participant(app, "Ada")
    app.config["PUBLIC_URL"] = "https://short.example/dl"
    page = login_client(app, ada).get("/projector?exercise=cnn-from-scratch")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-stay="cnn-from-scratch"' in html
    assert "data:image/svg+xml" in html and 'data-url="https://short.example/dl"' in html
    assert login_client(app, ada).get("/projector?exercise=nope").status_code == 404
    assert app.test_client().get("/projector").status_code == 302
    assert app.test_client().get("/projector/feed").status_code == 302


def test_the_stream_sends_a_changed_snapshot_after_a_score_and_keepalives_when_idle(app):
    ada = make_participant(app, "Ada")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] == 1.0:  # between two polls, a result lands
            make_submission(app, ada, status="done", public_score=0.81, private_score=PRIVATE_A)

    stream = event_stream(app, "http://x/join", FeedTiming(0.5, 1.0, 2.5), clock=lambda: now[0], sleep=sleep)
    lines = list(stream)
    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert lines[0].startswith("retry:") and len(events) == 2
    assert cnn(events[0])["board"]["rows"] == []
    assert [row["public_score"] for row in cnn(events[1])["board"]["rows"]] == [0.81]
    assert ": keepalive\n\n" in lines and "0.9123" not in "".join(lines)


def test_the_feed_is_an_event_stream_and_participants_share_a_few(app):
    ada = make_participant(app, "Ada")
    app.config["PROJECTOR_MAX_STREAMS"] = 1
    client = login_client(app, ada)
    first = client.get("/projector/feed", buffered=False)
    assert first.mimetype == "text/event-stream" and first.headers["X-Accel-Buffering"] == "no"
    assert first.headers["Cache-Control"] == "no-cache"
    assert client.get("/projector/feed").status_code == 503  # the one stream is taken: poll the snapshot
    assert instructor_client(app).get("/projector/feed").status_code == 200  # the instructor's projector always
    first.close()
    assert client.get("/projector/feed").status_code == 200
