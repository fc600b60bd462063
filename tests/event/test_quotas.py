"""Quotas: what counts, what remains, when the next one frees up, and the 429 that queues nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from factories import make_participant, make_submission

from grader.exercises import Quota
from server.catalog import catalog
from server.db import new_session
from server.event import grant_quota, set_quota
from server.models import Submission, utcnow
from server.queueing import queue_submission
from server.quotas import QuotaExhausted, quota_status

CODE = "def train(data):\n    pass\n"


def _count(app) -> int:
    with new_session(app) as db:
        return db.query(Submission).count()


def test_counted_submissions_and_the_reset_time(app):
    ada = make_participant(app, "Ada")
    now = utcnow()
    quota = Quota(count=3, per_seconds=3600)
    oldest = now - timedelta(minutes=50)
    make_submission(app, ada, status="done", created_at=oldest, public_score=0.7)
    make_submission(app, ada, status="failed", error_kind="timeout", created_at=now - timedelta(minutes=20))
    # not counted: the server's fault, cancelled before it started, outside the window, another exercise
    make_submission(app, ada, status="failed", error_kind="infrastructure", created_at=now - timedelta(minutes=10))
    make_submission(app, ada, status="cancelled", created_at=now - timedelta(minutes=5))
    make_submission(app, ada, status="done", created_at=now - timedelta(minutes=61), public_score=0.6)
    make_submission(app, ada, slug="fine-tuning", status="done", created_at=now, public_score=0.6)
    # counted: cancelled after it had started (it used a slot)
    make_submission(app, ada, status="cancelled", created_at=now - timedelta(minutes=1), started_at=now)
    with new_session(app) as db:
        status = quota_status(db, ada, "cnn-from-scratch", quota, now)
    assert (status.limit, status.used, status.remaining) == (3, 3, 0)
    assert status.resets_at == oldest + timedelta(hours=1)


def test_over_the_quota_the_submission_is_refused_with_429_and_nothing_is_queued(app):
    ada = make_participant(app, "Ada")
    exercise = catalog(app)["cnn-from-scratch"]
    with new_session(app) as db:
        set_quota(db, exercise, Quota(count=2, per_seconds=1800))
        for _ in range(2):
            assert queue_submission(db, _participant(db, ada), exercise, CODE, None, max_open=10).id
        before = db.query(Submission).count()
        with pytest.raises(QuotaExhausted) as refused:
            queue_submission(db, _participant(db, ada), exercise, CODE, None, max_open=10)
    assert refused.value.status == 429 and refused.value.code == "quota_exhausted"
    assert refused.value.details["quota"]["remaining"] == 0 and refused.value.details["resets_at"].endswith("Z")
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 1801
    assert _count(app) == before


def test_a_grant_raises_one_participants_limit_and_a_quota_can_be_removed(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    exercise = catalog(app)["cnn-from-scratch"]
    with new_session(app) as db:
        set_quota(db, exercise, Quota(count=1, per_seconds=3600))
        grant_quota(db, "ada", exercise, 2)  # names match as at login (case-insensitive)
        for _ in range(3):
            queue_submission(db, _participant(db, ada), exercise, CODE, None, max_open=10)
        queue_submission(db, _participant(db, bob), exercise, CODE, None, max_open=10)
        with pytest.raises(QuotaExhausted):
            queue_submission(db, _participant(db, bob), exercise, CODE, None, max_open=10)
        set_quota(db, exercise, None)
        queue_submission(db, _participant(db, bob), exercise, CODE, None, max_open=10)


def _participant(db, participant_id):
    from server.models import Participant

    return db.get(Participant, participant_id)


def test_the_quota_holds_under_concurrent_posts(any_db_app):
    """Eight posts at once against a quota of 2 (open limit out of the way): exactly two are queued, six get 429."""
    app = any_db_app
    app.config["MAX_OPEN_SUBMISSIONS"] = 100
    token = "q" * 43
    participant_id = make_participant(app, "Ada", token=token)
    with new_session(app) as db:
        set_quota(db, catalog(app)["cnn-from-scratch"], Quota(count=2, per_seconds=3600))
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def post():
        client = app.test_client()
        barrier.wait()
        headers = {"Authorization": f"Bearer {token}"}
        response = client.post("/api/exercises/cnn-from-scratch/submissions", json={"code": CODE}, headers=headers)
        answers.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with new_session(app) as db:
        stored = db.query(Submission).filter(Submission.participant_id == participant_id).count()
    assert stored == 2
    assert sorted(answers) == [201, 201] + [429] * 6
