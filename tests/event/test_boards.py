"""Boards: per data set, frozen for participants, the private board of final selections with the shake-up."""

from __future__ import annotations

from datetime import timedelta

from factories import make_participant, make_submission

from server.boards import build_board
from server.catalog import catalog
from server.db import new_session
from server.event import freeze, hide, reveal, unfreeze
from server.models import EventSettings, utcnow
from server.scoreboard import final_selection


def _board(app, **options):
    with new_session(app) as db:
        return build_board(db, catalog(app)["cnn-from-scratch"], **options)


def _names(board) -> list[str]:
    return [row.display_name for row in board.rows]


def test_the_board_ranks_only_the_active_data_set_and_keeps_the_old_one_viewable(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    make_submission(app, ada, status="done", public_score=0.9, dataset="synthetic")
    make_submission(app, bob, status="done", public_score=0.8, dataset="isic-2020")
    make_submission(app, bob, status="done", public_score=0.7, dataset="synthetic")
    assert _names(_board(app)) == ["Ada", "Bob"]
    with new_session(app) as db:
        db.get(EventSettings, 1).active_dataset = "isic-2020"
        db.commit()
    board = _board(app)
    assert (board.dataset, _names(board), board.rows[0].public_score) == ("isic-2020", ["Bob"], 0.8)
    assert board.datasets == ["isic-2020", "synthetic"]
    old = _board(app, dataset="synthetic")
    assert _names(old) == ["Ada", "Bob"] and old.active_dataset == "isic-2020"


def test_a_frozen_board_shows_everyone_as_they_stood_and_the_instructor_sees_it_live(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    now = utcnow()
    make_submission(
        app,
        ada,
        status="done",
        public_score=0.8,
        finished_at=now - timedelta(minutes=10),
        created_at=now - timedelta(minutes=12),
    )
    make_submission(
        app,
        bob,
        status="done",
        public_score=0.7,
        finished_at=now - timedelta(minutes=9),
        created_at=now - timedelta(minutes=11),
    )
    with new_session(app) as db:
        freeze(db, now - timedelta(minutes=5))
    make_submission(app, bob, status="done", public_score=0.95, finished_at=now, created_at=now)
    frozen = _board(app)
    assert frozen.frozen_at is not None and not frozen.live
    assert [(row.display_name, row.public_score, row.submissions) for row in frozen.rows] == [
        ("Ada", 0.8, 1),
        ("Bob", 0.7, 1),
    ]
    live = _board(app, instructor=True)
    assert live.live and [(row.display_name, row.public_score) for row in live.rows] == [("Bob", 0.95), ("Ada", 0.8)]
    with new_session(app) as db:
        unfreeze(db)
    assert _names(_board(app)) == ["Bob", "Ada"]


def test_a_freeze_set_for_later_leaves_the_board_live_until_then(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        freeze(db, utcnow() + timedelta(minutes=30))
    make_submission(app, ada, status="done", public_score=0.8)
    board = _board(app)
    assert board.frozen_at is None and _names(board) == ["Ada"]


def test_the_private_board_ranks_final_selections_and_shows_each_move(app):
    ada, bob, cy = (make_participant(app, name) for name in ("Ada", "Bob", "Cy"))
    # public: Ada 0.9, Bob 0.8, Cy 0.7; private of the final selections: Cy 0.85, Ada 0.75, Bob 0.6
    make_submission(app, ada, status="done", public_score=0.9, private_score=0.75)
    make_submission(app, ada, status="done", public_score=0.5, private_score=0.99)  # not among her best two
    make_submission(app, ada, status="done", public_score=0.6, private_score=0.7)
    make_submission(app, bob, status="done", public_score=0.8, private_score=0.9)  # Bob marked another one
    make_submission(app, bob, status="done", public_score=0.3, private_score=0.6, final=True)
    make_submission(app, cy, status="done", public_score=0.7, private_score=0.85)
    hidden = _board(app)
    assert not hidden.revealed and hidden.private is None
    assert "private_score" not in str(hidden.as_json())
    with new_session(app) as db:
        reveal(db, catalog(app)["cnn-from-scratch"])
    shown = _board(app)
    rows = shown.as_json()["rows"]
    assert [(r["display_name"], r["private_score"], r["private_rank"], r["rank"], r["rank_change"]) for r in rows] == [
        ("Cy", 0.85, 1, 3, 2),
        ("Ada", 0.75, 2, 1, -1),
        ("Bob", 0.6, 3, 2, -1),
    ]
    with new_session(app) as db:
        hide(db, catalog(app)["cnn-from-scratch"])
    assert "private_score" not in str(_board(app).as_json())


def test_the_default_final_selection_is_the_two_best_public_submissions(app):
    ada = make_participant(app, "Ada")
    ids = [make_submission(app, ada, status="done", public_score=score) for score in (0.6, 0.9, 0.8, 0.7)]
    with new_session(app) as db:
        assert [s.id for s in final_selection(db, ada, "cnn-from-scratch", "synthetic")] == [ids[1], ids[2]]
