"""The database job store: atomic claims, leases that expire, results recorded once, retries on our faults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import login_client, make_participant, post_form

from grader.grading import GradeResult, Progress
from server.catalog import catalog
from server.db import new_session
from server.job_store import DatabaseJobStore
from server.models import Participant, Submission, utcnow
from server.queueing import queue_submission
from server.scoreboard import standings

CODE = "def train(data):\n    return None\n"


@pytest.fixture
def store(app):
    return DatabaseJobStore(app, max_attempts=2)


def add_submissions(app, count: int, name: str = "Ada") -> list[int]:
    """A new participant ``name`` (stored directly) with ``count`` queued submissions; their ids."""
    participant_id = make_participant(app, name)
    ids = []
    with new_session(app) as db:
        participant = db.get(Participant, participant_id)
        exercise = catalog(app)["cnn-from-scratch"]
        for _ in range(count):
            ids.append(queue_submission(db, participant, exercise, CODE, None, max_open=count).id)
    return ids


def ready_now(app, submission_id: int) -> None:
    """End a retry's back-off now (instead of waiting for it)."""
    with new_session(app) as db:
        db.get(Submission, submission_id).not_before = None
        db.commit()


def status_of(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        return db.get(Submission, submission_id)


def test_claims_in_order_and_never_twice(app, store):
    first, second = add_submissions(app, 2)
    job_a = store.claim_next_job("w1", 60)
    job_b = store.claim_next_job("w2", 60)
    assert (job_a.submission_id, job_b.submission_id) == (first, second)
    assert store.claim_next_job("w3", 60) is None
    assert status_of(app, first).status == "running" and status_of(app, first).attempts == 1


def test_expired_lease_goes_back_to_the_queue_and_the_old_claim_is_void(app, store):
    (only,) = add_submissions(app, 1)
    stale = store.claim_next_job("dead-worker", 60)
    with new_session(app) as db:
        db.get(Submission, only).lease_expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    assert store.claim_next_job("live-worker", 60) is None  # back in the queue, after a short wait
    ready_now(app, only)
    fresh = store.claim_next_job("live-worker", 60)
    assert fresh.submission_id == only and fresh.token != stale.token
    assert store.renew_lease(stale, 60) is False
    assert store.record_result(stale, GradeResult(status="done", public_score=0.9)) is False
    assert store.record_result(fresh, GradeResult(status="done", public_score=0.7)) is True
    row = status_of(app, only)
    assert row.status == "done" and row.public_score == 0.7 and row.attempts == 2
    assert store.record_result(fresh, GradeResult(status="done", public_score=0.1)) is False


def test_progress_is_stored_while_running(app, store):
    add_submissions(app, 1)
    job = store.claim_next_job("w", 60)
    store.report_progress(job, Progress(log="Epoch 1/3", history=[{"epoch": 1, "metrics": {"loss": 0.6}}]))
    row = status_of(app, job.submission_id)
    assert row.log == "Epoch 1/3" and row.history[0]["epoch"] == 1


def test_infrastructure_failures_are_retried_then_recorded(app, store):
    (only,) = add_submissions(app, 1)
    broken = GradeResult(status="failed", error_kind="infrastructure", message="disk full")
    assert store.record_result(store.claim_next_job("w", 60), broken)
    assert status_of(app, only).status == "queued"
    ready_now(app, only)  # the retry's back-off is over
    assert store.record_result(store.claim_next_job("w", 60), broken)
    row = status_of(app, only)
    assert row.status == "failed" and row.error_kind == "infrastructure"


def test_a_participant_cannot_flood_the_queue(app):
    from server.errors import WorkshopError

    first, *_ = add_submissions(app, 1)
    with new_session(app) as db:
        participant = db.get(Submission, first).participant
        with pytest.raises(WorkshopError, match="already have a submission waiting or running"):
            queue_submission(db, participant, catalog(app)["cnn-from-scratch"], CODE, None)
        queue_submission(db, participant, catalog(app)["fine-tuning"], CODE, None, max_open=2)  # configurable


def test_leaderboard_keeps_each_participants_best(app, store):
    ids_ada = add_submissions(app, 2, "Ada")
    ids_bob = add_submissions(app, 1, "Bob")
    scores = dict(zip([*ids_ada, *ids_bob], [0.6, 0.8, 0.7], strict=True))
    while (job := store.claim_next_job("w", 60)) is not None:
        store.record_result(job, GradeResult(status="done", public_score=scores[job.submission_id], private_score=0.5))
    with new_session(app) as db:
        rows = standings(db, "cnn-from-scratch")
    assert [(row.rank, row.display_name, row.public_score, row.submissions) for row in rows] == [
        (1, "Ada", 0.8, 2),
        (2, "Bob", 0.7, 1),
    ]


def test_a_job_that_keeps_killing_its_worker_fails_after_the_last_attempt(app, store):
    (only,) = add_submissions(app, 1)

    def claim_and_let_expire():
        job = store.claim_next_job("doomed-worker", 60)
        with new_session(app) as db:
            db.get(Submission, only).lease_expires_at = utcnow() - timedelta(seconds=1)
            db.commit()
        return job

    claim_and_let_expire()
    assert store.claim_next_job("w", 60) is None  # requeued, waiting out its back-off
    ready_now(app, only)
    claim_and_let_expire()  # attempts == max_attempts (2)
    assert store.claim_next_job("w", 60) is None
    row = status_of(app, only)
    assert row.status == "failed" and row.error_kind == "infrastructure"
    assert "stopped 2 times" in row.error_message


def test_cancelled_jobs_lose_their_claim(app, store):
    from server.queueing import cancel_submission

    (only,) = add_submissions(app, 1)
    job = store.claim_next_job("w", 60)
    with new_session(app) as db:
        assert cancel_submission(db, db.get(Submission, only)) is True
        assert cancel_submission(db, db.get(Submission, only)) is False
    assert store.renew_lease(job, 60) is False
    assert store.record_result(job, GradeResult(status="done", public_score=0.9)) is False
    assert status_of(app, only).status == "cancelled"


def test_only_the_owner_can_cancel(app):
    (only,) = add_submissions(app, 1, "Ada")
    bob = login_client(app, make_participant(app, "Bob"))
    token_page = "/exercises/cnn-from-scratch"
    assert post_form(bob, f"/submissions/{only}/cancel", {}, form_url=token_page).status_code == 404
    ada = login_client(app, status_of(app, only).participant_id)
    response = post_form(ada, f"/submissions/{only}/cancel", {}, form_url=token_page)
    assert response.status_code == 302 and status_of(app, only).status == "cancelled"


def test_each_gpu_gets_its_own_slot(app):
    """`workshop worker --gpus 0,1`: two slots, each passing its own GPU index to the grading function."""
    import threading

    from grader.executor import ExecutorSettings, LocalExecutor
    from server.job_store import DatabaseJobStore

    add_submissions(app, 2)
    seen: list[int | None] = []
    done = threading.Event()

    def fake_grade(job, uid, on_progress, gpu):
        seen.append(gpu)
        if len(seen) == 2:
            done.set()
        return GradeResult(status="done", public_score=0.5)

    executor = LocalExecutor(DatabaseJobStore(app), fake_grade, ExecutorSettings(gpus=(0, 1), idle_poll_seconds=0.1))
    executor.start()
    try:
        assert done.wait(30)
    finally:
        executor.stop()
    assert len(executor.threads) == 2 and all(gpu in (0, 1) for gpu in seen)
