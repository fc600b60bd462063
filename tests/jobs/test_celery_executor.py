"""The Celery executor on the real RabbitMQ: tickets are wake-ups, the database decides; the dispatcher keeps
tickets and queued jobs in step (a broker that lost its messages, a job whose worker died)."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from factories import login_client, make_participant, make_submission, submit_code
from paths import PROJECT_ROOT

from grader.executor import ExecutorSettings, LocalExecutor, SlotState
from grader.grading import GradeResult
from grader.warm_pool import SlotUids
from server.celery_app import Dispatcher, make_celery
from server.celery_worker import TicketRunner
from server.db import new_session
from server.job_store import RESTART_NOTE, DatabaseJobStore
from server.models import Submission, utcnow
from server.queueing import cancel_submission


@pytest.fixture
def celery_app(any_db_app):
    """The app with the Celery executor on a queue of its own (deleted afterwards), on SQLite and on PostgreSQL."""
    app = any_db_app
    app.config.update(EXECUTOR="celery", CELERY_QUEUE=f"test-{secrets.token_hex(6)}", DISPATCH_SECONDS=0.2)
    yield app
    dispatcher = Dispatcher(app)
    with dispatcher.celery.connection_for_write() as connection:
        dispatcher.queue.bind(connection.default_channel).delete()


def wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def row(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        return db.get(Submission, submission_id)


def test_submitting_publishes_one_ticket_and_the_sweep_adds_none(celery_app):
    participant = make_participant(celery_app, "Ada")
    client = login_client(celery_app, participant)
    client.get("/exercises")  # the web process's first request starts its dispatcher
    dispatcher = celery_app.extensions["executor"]
    assert isinstance(dispatcher, Dispatcher)
    wait_for(lambda: dispatcher.sweeps >= 1)  # its first sweep is done (it would count the new job's ticket)
    dispatcher.interval = 3600  # no sweep during this test unless called
    answer = submit_code(client, "cnn-from-scratch", "def train(data):\n    return None\n")
    assert answer.status_code in (302, 303)
    wait_for(lambda: dispatcher.waiting() == 1)
    assert dispatcher.published == 1 and dispatcher.sweep() == 0 and dispatcher.waiting() == 1


def test_the_sweep_republishes_what_the_broker_lost_and_requeues_expired_leases(celery_app):
    dispatcher = Dispatcher(celery_app)
    make_submission(celery_app, make_participant(celery_app, "Ada"))
    make_submission(celery_app, make_participant(celery_app, "Bo"))
    assert dispatcher.sweep() == 2
    wait_for(lambda: dispatcher.waiting() == 2)  # the broker counts a published message a moment later
    dispatcher.purge()  # a broker that restarted without its messages
    assert dispatcher.waiting() == 0 and dispatcher.sweep() == 2
    dispatcher.purge()
    store = DatabaseJobStore(celery_app)
    job = store.claim_next_job("worker-that-dies", 60)
    assert dispatcher.sweep() == 1  # the running job needs no ticket
    dispatcher.purge()
    with new_session(celery_app) as db:
        db.get(Submission, job.submission_id).lease_expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    assert dispatcher.sweep() == 1  # requeued, but waits for its back-off before it gets a ticket
    wait_for(lambda: dispatcher.waiting() == 1)
    requeued = row(celery_app, job.submission_id)
    assert requeued.status == "queued" and RESTART_NOTE in requeued.notes
    with new_session(celery_app) as db:
        db.get(Submission, job.submission_id).not_before = None
        db.commit()
    assert dispatcher.sweep() == 1
    wait_for(lambda: dispatcher.waiting() == 2)


def test_the_dispatcher_thread_publishes_at_once_and_survives_a_broker_it_cannot_reach(celery_app):
    broker = celery_app.config["BROKER_URL"]
    celery_app.config["BROKER_URL"] = "amqp://guest:guest@127.0.0.1:9//"  # nobody listens
    dispatcher = Dispatcher(celery_app)
    celery_app.config["BROKER_URL"] = broker
    dispatcher.start()
    try:
        dispatcher.notify()
        time.sleep(1.0)
        assert dispatcher.thread.is_alive() and dispatcher.published == 0
    finally:
        dispatcher.stop(timeout=0.1)


def ticket_runner(app, graded: list) -> TicketRunner:
    def grade(job, uid, on_progress, gpu):
        graded.append(job.submission_id)
        return GradeResult(status="done", public_score=0.5, private_score=0.5)

    executor = LocalExecutor(DatabaseJobStore(app), grade, ExecutorSettings(heartbeat_seconds=0))
    return TicketRunner(executor, SlotState(index=0, gpu=None, name="host:1:slot-0"), SlotUids.held(1000))


def test_a_redelivered_ticket_never_runs_a_job_twice_and_a_cancelled_job_never_starts(celery_app):
    graded: list = []
    runner = ticket_runner(celery_app, graded)
    only = make_submission(celery_app, make_participant(celery_app, "Ada"))
    runner.run_ticket()
    runner.run_ticket()  # the same ticket again (redelivered) or a surplus one: nothing left to claim
    assert graded == [only] and row(celery_app, only).status == "done"
    cancelled = make_submission(celery_app, make_participant(celery_app, "Bo"))
    with new_session(celery_app) as db:
        cancel_submission(db, db.get(Submission, cancelled))
        db.commit()
    runner.run_ticket()
    assert graded == [only] and row(celery_app, cancelled).status == "cancelled"


def test_the_celery_settings_are_the_ones_the_issue_names(celery_app):
    conf = make_celery(celery_app.config).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.worker_concurrency == 1
    assert conf.broker_transport_options["visibility_timeout"] >= 6 * 3600
    assert conf.accept_content == ["json"]


@pytest.mark.sandbox
@pytest.mark.slow
def test_a_worker_killed_mid_job_hands_it_to_another_that_completes_it_exactly_once(tmp_path):
    """Two real remote workers (Celery processes, real RabbitMQ, the bwrap sandbox), the server on loopback:
    SIGKILL the one running the job; its lease expires, the job is requeued with the note, the other runs it."""
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    from celery_rig import Rig, kill_mid_job

    rig = Rig(tmp_path, lease_seconds=6)
    try:
        rig.start_worker("w1")
        rig.start_worker("w2")
        result = kill_mid_job(rig)
    finally:
        rig.close()
    assert result["status"] == "done" and result["attempts"] == 2, result
    assert result["other_worker"] and result["uploads_recorded"] == 1 and result["restart_note_shown"], result
    assert result["exactly_once"]


def test_a_worker_whose_sandbox_check_fails_consumes_nothing_and_says_why(celery_app, monkeypatch):
    from grader.sandbox import SandboxUnavailable
    from server.celery_worker import SlotMaker, consume_slot
    from server.executor_runtime import job_store_for
    from server.models import WorkerSlot

    started = []
    monkeypatch.setattr("server.celery_worker._consume", lambda *args: started.append(args))
    checks = []

    def failing_build(app, slots=1, gpus=()):
        checks.append(1)
        raise SandboxUnavailable("the bwrap sandbox does not isolate jobs on this host:\nnetwork  FAIL")

    celery_app.config["SANDBOX_RECHECK_SECONDS"] = 0.05
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    consume_slot(celery_app, SlotMaker(build=failing_build, store_for=job_store_for), 0, None, stop)
    assert started == [] and len(checks) >= 2  # checked again and again, never consumed
    with new_session(celery_app) as db:
        slot = db.query(WorkerSlot).one()
        assert slot.state == "paused" and "sandbox check failed" in slot.reason and "takes no tickets" in slot.reason


def test_a_failing_periodic_check_hands_the_ticket_back_and_stops_consuming(celery_app, monkeypatch):
    from celery.exceptions import Reject

    graded: list = []
    runner = ticket_runner(celery_app, graded)
    runner.executor.health_check = lambda uid: (False, "network: the job reached the internet")
    runner.executor.settings = ExecutorSettings(recheck_seconds=0, heartbeat_seconds=0)
    signals = []
    monkeypatch.setattr("server.celery_worker.os.kill", lambda pid, signum: signals.append(signum))
    only = make_submission(celery_app, make_participant(celery_app, "Ada"))
    with pytest.raises(Reject) as rejected:
        runner.run_ticket()
    assert rejected.value.requeue and runner.paused and signals == [signal.SIGTERM]
    assert graded == [] and row(celery_app, only).status == "queued"


@pytest.mark.slow
def test_a_celery_worker_stops_at_once_on_sigterm_even_right_after_it_started(tmp_path):
    """Idle, a Celery loop without timers would sleep through SIGTERM; one that came before Celery's own handler
    was installed must count too. Both slots of a two-slot worker stop and say so."""
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    from celery_rig import Rig

    from server.models import WorkerSlot

    rig = Rig(tmp_path)
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker", "--slots", "2", "--gpus", "none"],
            env=rig.worker_env("stopper", sandbox="none"),
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def slots():
            with new_session(rig.app) as db:
                return {slot.name.split(":")[-1]: slot.state for slot in db.query(WorkerSlot)}

        rig.wait(lambda: len(slots()) == 2, 60, "both slots reporting")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert slots() == {"slot-0": "stopped", "slot-1": "stopped"}
    finally:
        if worker.poll() is None:
            worker.kill()
        rig.close()


@pytest.mark.slow
@pytest.mark.sandbox  # a root serve: its web workers run as the web user
def test_a_served_web_process_republishes_queued_jobs_at_boot_before_any_request(tmp_path, data_dir, monkeypatch):
    """After a restart nobody may have to load a page first: the web worker's boot starts the dispatcher, whose
    sweep publishes a ticket for the job that waited in the database."""
    from server import create_app
    from server.live_instance import free_port, stop_serve, workshop_command

    queue = f"test-boot-{secrets.token_hex(4)}"
    settings = {
        "WORKSHOP_INSTANCE_PATH": str(tmp_path / "instance"),
        "WORKSHOP_DATA_DIR": str(data_dir),
        "WORKSHOP_EXECUTOR": "celery",
        "WORKSHOP_CELERY_QUEUE": queue,
        "WORKSHOP_EVENT_PASSWORD": "boot-event-pass",
        "WORKSHOP_INSTRUCTOR_PASSWORD": "boot-instructor-pass",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    subprocess.run(workshop_command("init"), check=True, capture_output=True, cwd=PROJECT_ROOT)
    app = create_app()
    make_submission(app, make_participant(app, "Ada"))
    dispatcher = Dispatcher(app)
    assert dispatcher.waiting() == 0
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        workshop_command("serve", "--port", str(free_port()), "--slots", "0"), stdout=log, stderr=log, cwd=PROJECT_ROOT
    )
    try:
        wait_for(lambda: dispatcher.waiting() == 1, timeout=90)  # no HTTP request was made
    finally:
        stop_serve(server)
        log.close()
        with dispatcher.celery.connection_for_write() as connection:
            dispatcher.queue.bind(connection.default_channel).delete()
