"""The Celery executor's broker side: the Celery app, the ticket task's name, and the server's dispatcher.

A ticket is a wake-up, not a job: the web app publishes one per queued submission (``notify_executor``), and a
consumer that takes one claims the next job in fair order through the job store (server/celery_worker.py).
The database stays the source of truth: a claim is conditional, so a redelivered ticket never runs a job twice
and a cancelled job is never started. The dispatcher (a thread of the web process) also requeues jobs whose
lease expired and republishes tickets when fewer wait in the broker than jobs wait in the queue (a broker that
restarted empty, a job requeued after its worker died, a retry whose back-off ended). Surplus tickets are
harmless: a consumer that finds nothing to claim acknowledges and waits for the next.

Like Codabench: RabbitMQ by default, late acknowledgement, prefetch 1, concurrency 1, one consumer process per
slot or GPU; Redis works too, with a visibility timeout longer than any job (WORKSHOP_CELERY_VISIBILITY_SECONDS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from celery import Celery
from flask import Flask
from kombu import Queue
from sqlalchemy import func, or_, select

from server.db import new_session
from server.job_store import DatabaseJobStore
from server.models import Submission, utcnow

log = logging.getLogger(__name__)
TICKET_TASK = "workshop.ticket"
_start_lock = threading.Lock()


def make_celery(config: Mapping) -> Celery:
    """A Celery app on WORKSHOP_BROKER_URL with the executor's settings (acks late, prefetch 1, concurrency 1)."""
    celery = Celery("workshop", broker=config["BROKER_URL"], set_as_current=False)
    queue = Queue(config["CELERY_QUEUE"], durable=True)
    celery.conf.update(
        task_queues=[queue],
        task_default_queue=queue.name,
        task_acks_late=True,  # a ticket is acknowledged after its job, so a worker that dies hands it back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a busy worker holds no second ticket that another could run
        worker_concurrency=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_heartbeat=0,  # a solo worker cannot answer heartbeats during a job; a dead one closes its socket
        broker_transport_options={"visibility_timeout": float(config["CELERY_VISIBILITY_SECONDS"])},  # Redis
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
    )
    return celery


class Dispatcher:
    """The web process's side: publishes a ticket per queued submission and keeps tickets and the queue in step.

    Sits in ``app.extensions["executor"]``, so ``notify_executor()`` (what the submit views call) publishes.
    """

    name = "celery"

    def __init__(self, app: Flask):
        self.app, self.celery = app, make_celery(app.config)
        self.queue = Queue(app.config["CELERY_QUEUE"], durable=True)
        self.interval = float(app.config["DISPATCH_SECONDS"])
        self.pending, self.lock = 0, threading.Lock()
        self.wakeup, self.stopping = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="celery-dispatcher", daemon=True)
        self.published = 0  # tickets published by this process (for tests and the log)
        self.sweeps = 0  # sweeps done by its thread

    def start(self) -> None:
        self.thread.start()

    def notify(self) -> None:
        """A job was queued: publish a ticket for it now (from this thread, so the request never waits)."""
        with self.lock:
            self.pending += 1
        self.wakeup.set()

    def busy(self) -> bool:
        return False

    def stop(self, timeout: float = 5) -> None:
        self.stopping.set()
        self.wakeup.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        last_sweep = 0.0
        while not self.stopping.is_set():
            self.wakeup.wait(max(0.05, self.interval - (time.monotonic() - last_sweep)))
            self.wakeup.clear()
            with self.lock:
                count, self.pending = self.pending, 0
            try:
                self.publish(count)
                if time.monotonic() - last_sweep >= self.interval:
                    last_sweep = time.monotonic()
                    self.sweep()
                    self.sweeps += 1
            except Exception as error:  # the broker is away: the next sweep republishes what is missing
                log.warning("publishing job tickets failed (%s); retrying in %.0f s", error, self.interval)
                last_sweep = time.monotonic()

    def publish(self, count: int) -> None:
        for _ in range(count):
            self.celery.send_task(TICKET_TASK, queue=self.queue.name)
            self.published += 1

    def sweep(self) -> int:
        """Requeue expired leases; publish as many tickets as ready jobs outnumber waiting tickets. Returns that."""
        now = utcnow()
        with new_session(self.app) as db, db.begin():
            DatabaseJobStore(self.app)._requeue_expired(db, now)  # noqa: SLF001 - the store's own requeue, with its note
            ready = db.scalar(
                select(func.count(Submission.id)).where(
                    Submission.status == "queued", or_(Submission.not_before.is_(None), Submission.not_before <= now)
                )
            )
        missing = max(0, int(ready or 0) - self.waiting())
        if missing:
            log.info("republishing %d ticket(s) for queued jobs no worker holds", missing)
            self.publish(missing)
        return missing

    def waiting(self) -> int:
        """Tickets waiting in the broker (not those a worker holds); declares the queue if it is gone."""
        with self.celery.connection_for_write() as connection:
            return int(self.queue.bind(connection.default_channel).queue_declare().message_count)

    def purge(self) -> None:
        """Drop every waiting ticket (tests and benchmarks start from an empty queue)."""
        with self.celery.connection_for_write() as connection:
            self.queue.bind(connection.default_channel).purge()


def start_dispatcher(app: Flask) -> Dispatcher:
    """The dispatcher of this process, started once (the web process, after gunicorn's fork)."""
    with _start_lock:
        dispatcher = app.extensions.get("executor")
        if not isinstance(dispatcher, Dispatcher):
            dispatcher = Dispatcher(app)
            app.extensions["executor"] = dispatcher
            dispatcher.start()
    return dispatcher
