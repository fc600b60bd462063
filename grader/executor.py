"""Executors run queued jobs. ``local``: worker slots (threads) claiming jobs from the job store.

The job store (implemented by the server on top of its database) is the source of truth; an
executor only claims, reports progress and records results through it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from grader.grading import GradeResult, Progress
from grader.slot_lock import SlotLock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a slot holds: ``token`` proves the claim when reporting, so a job is never recorded twice."""

    submission_id: int
    token: str
    code: str
    exercise_slug: str
    dataset: str


class ClaimLost(Exception):
    """The job was cancelled or taken over by another worker while it ran: stop, record nothing."""


class JobStore(Protocol):
    def claim_next_job(self, worker: str, lease_seconds: float) -> ClaimedJob | None: ...
    def renew_lease(self, job: ClaimedJob, lease_seconds: float) -> bool: ...
    def report_progress(self, job: ClaimedJob, progress: Progress) -> None: ...
    def record_result(self, job: ClaimedJob, result: GradeResult) -> bool: ...
    def release_job(self, job: ClaimedJob, reason: str) -> None: ...


# (job, sandbox uid, progress callback, GPU index or None) -> result
GradeFunction = Callable[[ClaimedJob, int, Callable[[Progress], None], int | None], GradeResult]


@dataclass(frozen=True)
class ExecutorSettings:
    slots: int = 1
    gpus: tuple[int, ...] = ()  # one slot per GPU when given (`workshop worker --gpus 0,1`)
    lease_seconds: float = 60
    idle_poll_seconds: float = 1.0
    progress_seconds: float = 2.0
    max_attempts: int = 3


class LocalExecutor:
    """Worker slots as threads of this process; each claims jobs from the store until stopped."""

    name = "local"

    def __init__(self, store: JobStore, grade_job: GradeFunction, settings: ExecutorSettings):
        self.store, self.grade_job, self.settings = store, grade_job, settings
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self.threads: list[threading.Thread] = []
        self.running: set[int] = set()  # submission ids being graded right now
        self.worker_name = f"{os.uname().nodename}:{os.getpid()}"

    def start(self) -> None:
        gpus = self.settings.gpus or (None,) * self.settings.slots
        for index, gpu in enumerate(gpus):
            thread = threading.Thread(target=self._slot_loop, args=(gpu,), name=f"slot-{index}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def busy(self) -> bool:
        return bool(self.running)

    def notify(self) -> None:
        """Wake idle slots now (a new job was queued in this process)."""
        self.wakeup.set()

    def stop(self, timeout: float = 5) -> None:
        self.stopping.set()
        self.wakeup.set()
        for thread in self.threads:
            thread.join(timeout=timeout)

    def _slot_loop(self, gpu: int | None = None) -> None:
        slot = SlotLock()
        uid = slot.acquire()
        worker = f"{self.worker_name}:{threading.current_thread().name}"
        try:
            while not self.stopping.is_set():
                if not self.run_one(worker, uid, gpu):
                    self.wakeup.wait(self.settings.idle_poll_seconds)
                    self.wakeup.clear()
        finally:
            slot.release()

    def run_one(self, worker: str, uid: int, gpu: int | None = None) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        try:
            job = self.store.claim_next_job(worker, self.settings.lease_seconds)
        except Exception:
            log.exception("claiming a job failed")
            return False
        if job is None:
            return False
        self.running.add(job.submission_id)
        try:
            self._run_claimed(job, uid, gpu)
        finally:
            self.running.discard(job.submission_id)
        return True

    def _run_claimed(self, job: ClaimedJob, uid: int, gpu: int | None = None) -> None:
        last_report = [0.0]

        def on_progress(progress: Progress) -> None:
            now = time.monotonic()
            if now - last_report[0] >= self.settings.progress_seconds:
                last_report[0] = now
                if not self.store.renew_lease(job, self.settings.lease_seconds):
                    raise ClaimLost(f"submission {job.submission_id} was cancelled or claimed elsewhere")
                self.store.report_progress(job, progress)

        result: GradeResult | None = None
        claim_lost = False
        try:
            result = self.grade_job(job, uid, on_progress, gpu)
        except ClaimLost:
            log.info("stopped submission %s: the claim was lost (cancelled?)", job.submission_id)
            claim_lost = True
        except Exception as error:
            log.exception("grading submission %s failed", job.submission_id)
            result = GradeResult(
                status="failed", error_kind="infrastructure", message=f"{type(error).__name__}: {error}"
            )
        finally:
            if result is not None:
                self.store.record_result(job, result)
            elif not claim_lost:  # interrupted (KeyboardInterrupt, SystemExit): hand the job back
                self.store.release_job(job, "the worker stopped while running it")
