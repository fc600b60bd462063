"""Open, close, deadlines, announcements: the refusals and what the API tells about each exercise."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from factories import make_participant

from server.catalog import catalog
from server.db import new_session
from server.errors import WorkshopError
from server.event import SubmissionsClosed, announce, exercise_json, parse_when, set_deadline, set_open
from server.models import Participant, Submission, utcnow
from server.queueing import queue_submission

CODE = "def train(data):\n    pass\n"


def _submit(app, participant_id, slug="cnn-from-scratch"):
    with new_session(app) as db:
        exercise = catalog(app)[slug]
        return queue_submission(db, db.get(Participant, participant_id), exercise, CODE, None, max_open=10)


def test_a_closed_exercise_refuses_with_403_closed_and_queues_nothing(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        set_open(db, [catalog(app)["cnn-from-scratch"]], False)
    with pytest.raises(SubmissionsClosed) as refused:
        _submit(app, ada)
    assert (refused.value.status, refused.value.code) == (403, "closed")
    _submit(app, ada, "fine-tuning")  # the others stay open
    with new_session(app) as db:
        assert db.query(Submission).count() == 1
        set_open(db, list(catalog(app).values()), True)
    _submit(app, ada)


def test_after_the_deadline_submissions_are_refused(app):
    ada = make_participant(app, "Ada")
    exercise = catalog(app)["cnn-from-scratch"]
    with new_session(app) as db:
        set_deadline(db, exercise, utcnow() + timedelta(minutes=5))
    _submit(app, ada)
    with new_session(app) as db:
        set_deadline(db, exercise, utcnow() - timedelta(seconds=1))
        listed = exercise_json(db, exercise, ada)
    assert listed["open"] is False and "deadline" in listed["closed_reason"]
    with pytest.raises(SubmissionsClosed, match="deadline"):
        _submit(app, ada)


def test_announcements_are_plain_text_limited_and_clearable(app):
    with new_session(app) as db:
        assert announce(db, "  Pizza\n at <b>12:30</b>  ") == "Pizza at <b>12:30</b>"
        with pytest.raises(WorkshopError, match="at most 500"):
            announce(db, "x" * 501)
        assert announce(db, "   ") is None


NOW = datetime(2026, 12, 2, 14, 0, 0)


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("+30m", None, datetime(2026, 12, 2, 14, 30)),
        ("+1h30m", None, datetime(2026, 12, 2, 15, 30)),
        ("2026-12-02T15:30Z", None, datetime(2026, 12, 2, 15, 30)),
        ("2026-12-02T15:30+01:00", None, datetime(2026, 12, 2, 14, 30)),
        ("15:30", 60, datetime(2026, 12, 2, 14, 30)),  # a browser one hour east of UTC
        ("2026-12-02T15:30", -120, datetime(2026, 12, 2, 17, 30)),
    ],
)
def test_times_the_instructor_types(text, offset, expected):
    assert parse_when(text, NOW, offset) == expected


@pytest.mark.parametrize("text", ["tomorrow", "25:00", "+0m", "+8d", "12:60", ""])
def test_times_that_make_no_sense_are_refused_with_a_message(text):
    with pytest.raises((WorkshopError, ValueError)):
        parse_when(text, NOW)


def test_local_times_without_a_zone_use_the_servers_zone(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()
    try:
        assert parse_when("15:30", NOW) == datetime(2026, 12, 2, 15, 30)
    finally:
        monkeypatch.undo()
        time.tzset()
