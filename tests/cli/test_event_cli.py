"""`workshop event` and `workshop quota`: the event run over ssh, through the same code as the instructor's page."""

from __future__ import annotations

import json

from factories import make_participant, make_submission

from server.catalog import catalog
from server.db import new_session
from server.event import exercise_state, frozen_at
from server.models import EventSettings, QuotaGrant


def _state(app, slug="cnn-from-scratch"):
    with new_session(app) as db:
        return exercise_state(db, catalog(app)[slug])


def test_open_close_deadline_and_status(app, runner):
    result = runner.invoke(args=["event", "close", "cnn-from-scratch", "fine-tuning"])
    assert result.exit_code == 0, result.output
    assert not _state(app).open and not _state(app, "fine-tuning").open and _state(app, "transfer-learning").open
    assert runner.invoke(args=["event", "open"]).exit_code == 0  # no slug: every exercise
    assert all(_state(app, slug).open for slug in catalog(app))
    assert runner.invoke(args=["event", "deadline", "cnn-from-scratch", "2030-01-01T12:00Z"]).exit_code == 0
    status = json.loads(runner.invoke(args=["event", "status", "--json"]).output)
    listed = {item["slug"]: item for item in status["exercises"]}
    assert listed["cnn-from-scratch"]["deadline"] == "2030-01-01T12:00:00Z"
    assert status["frozen"] is False and status["queued"] == 0
    assert runner.invoke(args=["event", "deadline", "cnn-from-scratch", "--clear"]).exit_code == 0
    assert _state(app).deadline is None
    table = runner.invoke(args=["event", "status"]).output
    assert "cnn-from-scratch" in table and "board: live" in table


def test_freeze_reveal_announce(app, runner):
    assert runner.invoke(args=["event", "freeze"]).exit_code == 0
    with new_session(app) as db:
        assert frozen_at(db) is not None
    assert runner.invoke(args=["event", "unfreeze"]).exit_code == 0
    assert runner.invoke(args=["event", "freeze", "--at", "+10m"]).exit_code == 0
    with new_session(app) as db:
        assert frozen_at(db) is None and db.get(EventSettings, 1).freeze_at is not None  # later, not yet
    assert runner.invoke(args=["event", "reveal", "fine-tuning"]).exit_code == 0
    assert _state(app, "fine-tuning").revealed
    assert runner.invoke(args=["event", "hide", "fine-tuning"]).exit_code == 0
    assert not _state(app, "fine-tuning").revealed
    assert runner.invoke(args=["event", "announce", "Break until 15:00"]).exit_code == 0
    assert "Break until 15:00" in runner.invoke(args=["event", "status"]).output
    assert runner.invoke(args=["event", "announce", "--clear"]).exit_code == 0
    assert "announcement: -" in runner.invoke(args=["event", "status"]).output


def test_quota_set_grant_and_back_to_default(app, runner):
    ada = make_participant(app, "Ada Lovelace")
    result = runner.invoke(args=["quota", "set", "cnn-from-scratch", "5", "--per", "1h"])
    assert result.exit_code == 0, result.output
    quota = _state(app).quota
    assert (quota.count, quota.per_seconds) == (5, 3600)
    assert runner.invoke(args=["quota", "grant", "ada lovelace", "cnn-from-scratch", "2"]).exit_code == 0
    with new_session(app) as db:
        assert db.get(QuotaGrant, (ada, "cnn-from-scratch")).extra == 2
    assert runner.invoke(args=["quota", "set", "cnn-from-scratch", "none"]).exit_code == 0
    assert _state(app).quota is None
    assert runner.invoke(args=["quota", "set", "cnn-from-scratch", "default"]).exit_code == 0
    assert _state(app).quota == catalog(app)["cnn-from-scratch"].quota


def test_bad_input_is_refused_with_a_message_and_changes_nothing(app, runner):
    make_submission(app, make_participant(app, "Ada"))
    cases = [
        (["event", "close", "no-such-exercise"], "no exercise called 'no-such-exercise'"),
        (["event", "deadline", "cnn-from-scratch", "teatime"], "is not a time"),
        (["event", "deadline", "cnn-from-scratch"], "give either a time or --clear"),
        (["event", "freeze", "--at", "25:99"], "not a time of day"),
        (["event", "announce", "x" * 501], "at most 500"),
        (["quota", "set", "cnn-from-scratch", "5"], "--per"),
        (["quota", "set", "cnn-from-scratch", "five", "--per", "1h"], "give a whole number, `none` or `default`"),
        (["quota", "set", "cnn-from-scratch", "5", "--per", "soon"], "not a duration"),
        (["quota", "grant", "Nobody", "cnn-from-scratch", "2"], "no participant called 'Nobody'"),
        (["quota", "grant", "Ada", "cnn-from-scratch", "-1"], "-1"),
    ]
    before = json.loads(runner.invoke(args=["event", "status", "--json"]).output)
    for args, message in cases:
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    after = json.loads(runner.invoke(args=["event", "status", "--json"]).output)
    assert {k: v for k, v in after.items() if k != "now"} == {k: v for k, v in before.items() if k != "now"}
