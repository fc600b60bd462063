"""The API and the pages tell the same as the event: quota, open, deadline, frozen, revealed, the banner."""

from __future__ import annotations

from datetime import timedelta

from factories import instructor_login, login_client, make_participant, make_submission

from grader.exercises import Quota
from server.catalog import catalog
from server.db import new_session
from server.event import announce, freeze, reveal, set_deadline, set_open, set_quota
from server.models import Submission, utcnow

TOKEN = "nora-notebook-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CODE = {"code": "def train(data):\n    pass\n"}


def _exercise(app, slug="cnn-from-scratch"):
    return catalog(app)[slug]


def _listing(client, slug="cnn-from-scratch") -> dict:
    listed = client.get("/api/exercises", headers=AUTH).get_json()["exercises"]
    return next(item for item in listed if item["slug"] == slug)


def test_the_api_lists_quota_open_and_deadline_and_refuses_over_the_quota(app):
    app.config["MAX_OPEN_SUBMISSIONS"] = 10
    make_participant(app, "Nora", token=TOKEN)
    client = app.test_client()
    with new_session(app) as db:
        set_quota(db, _exercise(app), Quota(count=2, per_seconds=3600))
    item = _listing(client)
    assert item["open"] is True and item["deadline"] is None
    assert item["quota"] == {"limit": 2, "per_seconds": 3600, "used": 0, "remaining": 2, "resets_at": None}
    for _ in range(2):
        assert client.post("/api/exercises/cnn-from-scratch/submissions", json=CODE, headers=AUTH).status_code == 201
    item = _listing(client)
    assert (item["quota"]["used"], item["quota"]["remaining"]) == (2, 0) and item["quota"]["resets_at"].endswith("Z")
    refused = client.post("/api/exercises/cnn-from-scratch/submissions", json=CODE, headers=AUTH)
    body = refused.get_json()["error"]
    assert refused.status_code == 429 and body["code"] == "quota_exhausted"
    assert body["resets_at"] == item["quota"]["resets_at"] and int(refused.headers["Retry-After"]) > 0
    with new_session(app) as db:
        assert db.query(Submission).count() == 2


def test_closed_and_past_deadline_exercises_answer_403_closed(app):
    make_participant(app, "Nora", token=TOKEN)
    client = app.test_client()
    with new_session(app) as db:
        set_open(db, [_exercise(app)], False)
        set_deadline(db, _exercise(app, "fine-tuning"), utcnow() - timedelta(minutes=1))
    for slug in ("cnn-from-scratch", "fine-tuning"):
        refused = client.post(f"/api/exercises/{slug}/submissions", json=CODE, headers=AUTH)
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "closed", slug
        assert _listing(client, slug)["open"] is False
    assert _listing(client, "fine-tuning")["deadline"].endswith("Z")


def test_the_leaderboard_api_says_frozen_and_revealed_and_shows_private_figures_only_after_the_reveal(app):
    nora = make_participant(app, "Nora", token=TOKEN)
    bob = make_participant(app, "Bob")
    make_submission(app, nora, status="done", public_score=0.9, private_score=0.6)
    make_submission(app, bob, status="done", public_score=0.8, private_score=0.7)
    client = app.test_client()
    board = client.get("/api/leaderboard/cnn-from-scratch", headers=AUTH).get_json()
    assert (board["frozen"], board["revealed"]) == (False, False)
    assert [row["display_name"] for row in board["rows"]] == ["Nora", "Bob"]
    assert "private" not in str(board)
    with new_session(app) as db:
        freeze(db)
    make_submission(app, bob, status="done", public_score=0.95, private_score=0.7)
    board = client.get("/api/leaderboard/cnn-from-scratch", headers=AUTH).get_json()
    assert board["frozen"] is True and [row["public_score"] for row in board["rows"]] == [0.9, 0.8]
    with new_session(app) as db:
        reveal(db, _exercise(app))
    board = client.get("/api/leaderboard/cnn-from-scratch", headers=AUTH).get_json()
    assert board["revealed"] is True
    first = board["rows"][0]
    assert (first["display_name"], first["private_rank"], first["private_score"]) == ("Bob", 1, 0.7)
    assert {"rank", "public_score", "rank_change"} <= set(first)


def test_the_instructor_sees_the_live_board_during_a_freeze(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        freeze(db, utcnow() - timedelta(minutes=1))
    make_submission(app, ada, status="done", public_score=0.9, private_score=0.5)
    participant = login_client(app, ada)
    assert participant.get("/leaderboard/cnn-from-scratch.json").get_json()["rows"] == []
    page = participant.get("/leaderboard/cnn-from-scratch").get_data(as_text=True)
    assert "The board is frozen since" in page
    instructor = app.test_client()
    instructor_login(instructor)
    rows = instructor.get("/leaderboard/cnn-from-scratch.json").get_json()["rows"]
    assert [(row["display_name"], row["private_score"]) for row in rows] == [("Ada", 0.5)]


def test_the_announcement_is_a_banner_on_every_page_and_is_escaped(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        announce(db, "Pizza at 12:30 <script>alert(1)</script>")
    client = login_client(app, ada)
    for url in ("/exercises", "/exercises/cnn-from-scratch", "/leaderboard", "/account"):
        page = client.get(url).get_data(as_text=True)
        assert "Pizza at 12:30 &lt;script&gt;alert(1)&lt;/script&gt;" in page, url
        assert "<script>alert(1)" not in page, url
    assert "Pizza" in app.test_client().get("/login").get_data(as_text=True)
