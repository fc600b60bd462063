"""Nothing a submission does stops a worker slot; only the host's own failures are `infrastructure` (issue 9).

The job store runs on SQLite and on the real PostgreSQL (``any_db_app``): what one accepts, the other may not
(NUL bytes, lone surrogates, NaN in JSON).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from factories import make_participant
from sqlalchemy import event, select

from grader.executor import ExecutorSettings, LocalExecutor
from grader.grading import GradeResult, Progress
from server.catalog import catalog
from server.db import new_session
from server.job_store import DatabaseJobStore, retry_delay
from server.models import Participant, Submission, WorkerSlot, utcnow
from server.queueing import cancel_submission, queue_submission

CODE = "def train(data):\n    return None\n"
HOSTILE_TEXT = "bad \ud800 value \x00 with \x1b[31mcolour\x1b[0m and \udfff\r\n" + "x" * 50000


def add_submissions(app, count: int, name: str = "Ada") -> list[int]:
    participant_id = make_participant(app, name)
    with new_session(app) as db:
        participant = db.get(Participant, participant_id)
        exercise = catalog(app)["cnn-from-scratch"]
        return [queue_submission(db, participant, exercise, CODE, None, max_open=count).id for _ in range(count)]


def row_of(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        return db.get(Submission, submission_id)


def wait_until(condition, timeout: float = 60, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {message}")


def hostile_result() -> GradeResult:
    return GradeResult(
        status="failed",
        error_kind="runtime_error",
        message=HOSTILE_TEXT,
        traceback=HOSTILE_TEXT,
        log=HOSTILE_TEXT * 3,
        notes=[HOSTILE_TEXT, "\x00"],
        run_info={"\ud800key\x00": HOSTILE_TEXT, "nan": float("nan"), "deep": [[[[[[[["x"]]]]]]]]},
        history=[{"epoch": 0, "seconds": float("inf"), "metrics": {"loss\x00": float("nan"), "acc": 0.5}}],
        metrics={"public": {"roc_auc": float("nan")}},
    )


def assert_clean(text: str, limit: int) -> None:
    assert len(text) <= limit
    assert "\x00" not in text and "\x1b" not in text and "\r" not in text
    text.encode("utf-8")  # no lone surrogates left


def test_a_verdict_full_of_unstorable_text_is_stored_cleaned(any_db_app):
    (only,) = add_submissions(any_db_app, 1)
    store = DatabaseJobStore(any_db_app)
    job = store.claim_next_job("w", 60)
    store.report_progress(job, Progress(log=HOSTILE_TEXT, history=hostile_result().history))
    assert store.record_result(job, hostile_result()) is True
    row = row_of(any_db_app, only)
    assert row.status == "failed" and row.error_kind == "runtime_error"
    assert row.error_message.startswith("bad \ufffd value \ufffd with \ufffd[31mcolour")
    for text, limit in (
        (row.error_message, 2000),
        (row.traceback, 20000),
        (row.log, 100_000),
        *[(n, 300) for n in row.notes],
    ):
        assert_clean(text, limit)
    assert row.traceback.endswith("x")  # the end of a traceback is kept; of a log, its start and its end
    assert row.log.startswith("bad \ufffd value") and row.log.endswith("x") and "characters cut" in row.log
    assert row.history[0]["seconds"] is None and row.history[0]["metrics"] == {"loss\ufffd": None, "acc": 0.5}
    assert row.run_info["nan"] is None and "\ufffdkey\ufffd" in row.run_info
    assert row.metrics == {"public": {"roc_auc": None}}


class BrokenRecordStore(DatabaseJobStore):
    """The real store, except that storing a full verdict fails (as a database refusing a value would)."""

    def record_result(self, job, result):
        raise RuntimeError("the database refused the verdict")


def test_a_verdict_that_cannot_be_stored_becomes_a_minimal_one_and_the_slot_goes_on(any_db_app):
    first, second = add_submissions(any_db_app, 2)
    store = BrokenRecordStore(any_db_app)
    executor = LocalExecutor(store, lambda job, uid, progress, gpu: hostile_result(), ExecutorSettings())
    assert executor.run_one("w", 61001) is True
    assert executor.run_one("w", 61001) is True  # the slot went on to the next job
    for submission_id in (first, second):
        row = row_of(any_db_app, submission_id)
        assert (row.status, row.error_kind) == ("failed", "infrastructure")
        assert "could not be stored (RuntimeError)" in row.error_message


def test_a_slot_thread_that_dies_is_restarted(any_db_app):
    (only,) = add_submissions(any_db_app, 1)
    calls = []

    def grade_once_dying(job, uid, progress, gpu):
        calls.append(job.submission_id)
        if len(calls) == 1:
            raise SystemExit("the slot's thread dies")  # nothing a submission can do; the supervisor must cope
        return GradeResult(status="done", public_score=0.75, metrics={"public": {}, "private": {}})

    settings = ExecutorSettings(idle_poll_seconds=0.1, supervise_seconds=0.1)
    executor = LocalExecutor(DatabaseJobStore(any_db_app), grade_once_dying, settings)
    executor.start()
    try:
        wait_until(lambda: row_of(any_db_app, only).status == "done", message="the restarted slot to grade the job")
    finally:
        executor.stop()
    assert calls == [only, only] and len(executor.slots[0].restarts) == 1
    assert not executor.failed.is_set()


def test_an_executor_that_cannot_keep_any_slot_alive_says_so(app):
    def always_dying(job, uid, progress, gpu):
        raise SystemExit("dies every time")

    add_submissions(app, 1)
    settings = ExecutorSettings(idle_poll_seconds=0.1, supervise_seconds=0.05, max_restarts=3, lease_seconds=0.5)
    executor = LocalExecutor(DatabaseJobStore(app, max_attempts=100), always_dying, settings)
    executor.start()
    try:
        assert executor.failed.wait(60), "the executor never gave up"
    finally:
        executor.stop()
    assert "dies every time" in executor.failure_reason
    with new_session(app) as db:
        assert db.scalars(select(WorkerSlot.state)).all() == ["dead"]


def test_infrastructure_retries_wait_and_keep_their_place_in_the_queue(any_db_app):
    first, second, third = add_submissions(any_db_app, 3)
    store = DatabaseJobStore(any_db_app, max_attempts=3)
    job = store.claim_next_job("w", 60)
    assert job.submission_id == first
    assert store.record_result(job, GradeResult(status="failed", error_kind="infrastructure", message="disk full"))
    row = row_of(any_db_app, first)
    assert row.status == "queued" and row.not_before > utcnow() + timedelta(seconds=retry_delay(1) - 5)
    assert store.claim_next_job("w", 60).submission_id == second  # the retry waits; the queue goes on
    with new_session(any_db_app) as db:  # ...until its back-off is over: then it is next again, before the third
        db.get(Submission, first).not_before = utcnow() - timedelta(seconds=1)
        db.commit()
    assert store.claim_next_job("w", 60).submission_id == first
    assert store.claim_next_job("w", 60).submission_id == third
    assert retry_delay(1) < retry_delay(2) < retry_delay(3)


def test_a_slot_failing_jobs_in_a_row_for_infrastructure_pauses_itself_and_says_why(any_db_app):
    ids = add_submissions(any_db_app, 3) + add_submissions(any_db_app, 2, name="Bo")
    broken = GradeResult(status="failed", error_kind="infrastructure", message="the GPU fell off the bus")
    settings = ExecutorSettings(idle_poll_seconds=0.05, pause_after_failures=3, pause_seconds=300, max_attempts=1)
    store = DatabaseJobStore(any_db_app, max_attempts=1)
    executor = LocalExecutor(store, lambda job, uid, progress, gpu: broken, settings)
    executor.start()
    try:
        wait_until(lambda: executor.slots[0].paused_until > 0, message="the slot to pause")
        time.sleep(1)  # a paused slot claims nothing
        statuses = [row_of(any_db_app, submission_id).status for submission_id in ids]
        with new_session(any_db_app) as db:
            slot = db.scalars(select(WorkerSlot)).one()
            assert slot.state == "paused" and slot.paused_until > utcnow()
            assert "3 infrastructure failures in a row" in slot.reason and "GPU fell off the bus" in slot.reason
    finally:
        executor.stop()
    assert statuses == ["failed"] * 3 + ["queued"] * 2


def test_recording_a_verdict_never_overwrites_a_cancel_that_happened_meanwhile(any_db_app):
    (only,) = add_submissions(any_db_app, 1)
    store = DatabaseJobStore(any_db_app)
    job = store.claim_next_job("w", 60)
    engine = any_db_app.extensions["db_engine"]
    cancelled = []

    def cancel_first(conn, cursor, statement, parameters, context, executemany):
        """Just before the recorder writes, the participant presses Cancel (in another session)."""
        if statement.lstrip().upper().startswith("UPDATE SUBMISSIONS") and not cancelled:
            cancelled.append(True)
            with new_session(any_db_app) as db:
                assert cancel_submission(db, db.get(Submission, only))

    event.listen(engine, "before_cursor_execute", cancel_first)
    try:
        recorded = store.record_result(job, GradeResult(status="done", public_score=0.9))
    finally:
        event.remove(engine, "before_cursor_execute", cancel_first)
    assert cancelled and recorded is False
    row = row_of(any_db_app, only)
    assert row.status == "cancelled" and row.public_score is None


def test_the_open_submission_limit_holds_under_concurrent_posts(any_db_app):
    from server.queueing import MAX_OPEN_SUBMISSIONS

    participant_id = make_participant(any_db_app, "Ada", token="t" * 43)
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def post():
        client = any_db_app.test_client()
        barrier.wait()
        response = client.post(
            "/api/exercises/cnn-from-scratch/submissions",
            json={"code": CODE},
            headers={"Authorization": "Bearer " + "t" * 43},
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with new_session(any_db_app) as db:
        stored = db.scalars(select(Submission).where(Submission.participant_id == participant_id)).all()
    assert len(stored) == MAX_OPEN_SUBMISSIONS
    assert sorted(answers) == [201] * MAX_OPEN_SUBMISSIONS + [400] * (8 - MAX_OPEN_SUBMISSIONS)
