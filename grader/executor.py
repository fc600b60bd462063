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
from dataclasses import dataclass, field
from typing import Protocol

from grader.grading import GradeResult, Progress
from grader.warm_pool import POOL as WARM_POOL
from grader.warm_pool import SlotUids, plan_first_sandbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedJob:
    """A job a slot holds: ``token`` proves the claim when reporting, so a job is never recorded twice."""

    submission_id: int
    token: str
    code: str
    exercise_slug: str
    dataset: str
    seed: int | None = None  # handed to the harness as data.seed


class ClaimLost(Exception):
    """The job was cancelled or taken over by another worker while it ran: stop, record nothing."""


@dataclass(frozen=True)
class SlotReport:
    """A slot's heartbeat: its state (idle, busy, paused, stopped, dead), why, and what it has done."""

    name: str
    state: str
    reason: str | None = None
    paused_seconds: float = 0
    submission_id: int | None = None
    jobs_done: int = 0
    infrastructure_failures: int = 0
    uid: int | None = None  # the sandbox uid the slot runs its jobs as (None until it holds one)
    gpu: int | None = None  # the GPU index the slot owns (None: CPU only)


class JobStore(Protocol):
    def claim_next_job(self, worker: str, lease_seconds: float) -> ClaimedJob | None: ...
    def renew_lease(self, job: ClaimedJob, lease_seconds: float) -> bool: ...
    def report_progress(self, job: ClaimedJob, progress: Progress) -> None: ...
    def record_result(self, job: ClaimedJob, result: GradeResult) -> bool: ...
    def release_job(self, job: ClaimedJob, reason: str) -> None: ...
    def fail_job(self, job: ClaimedJob, reason: str) -> bool: ...
    def report_slot(self, slot: SlotReport) -> None: ...


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
    heartbeat_seconds: float = 15  # how often a slot reports itself (state, heartbeat) to the store
    pause_after_failures: int = 3  # infrastructure failures in a row that pause a slot
    pause_seconds: float = 60  # first pause; doubles with each pause in a row
    max_pause_seconds: float = 600
    supervise_seconds: float = 1.0  # how often dead slot threads are looked for
    max_restarts: int = 5  # restarts of one slot within restart_window before it is given up
    restart_window: float = 300
    recheck_seconds: float = 600  # an idle slot checks its sandbox again this often (a failing check pauses it)
    warm_slots: bool = False  # each slot holds two uids in turn, so its next sandbox warms while a job runs


# (sandbox uid) -> (the sandbox holds, why not): a slot's periodic self-check
HealthCheck = Callable[[int], tuple[bool, str]]
SANDBOX_FAILS = "sandbox check failed"  # how a paused slot's reason starts when its check failed


@dataclass
class SlotState:
    """What the executor knows about one of its slots (the supervisor restarts a dead thread)."""

    index: int
    gpu: int | None
    name: str
    uid: int | None = None  # the sandbox uid its thread holds (SlotLock)
    thread: threading.Thread | None = None
    restarts: list[float] = field(default_factory=list)  # monotonic times of recent restarts
    given_up: bool = False
    last_error: str | None = None
    jobs_done: int = 0
    infrastructure_failures: int = 0
    failures_in_a_row: int = 0
    pauses: int = 0
    paused_until: float = 0.0  # monotonic
    pause_reason: str | None = None
    submission_id: int | None = None
    last_report: float = 0.0
    last_check: float = 0.0  # monotonic time of its last sandbox self-check (0: at start, by the executor)


class LocalExecutor:
    """Worker slots as threads of this process; each claims jobs from the store until stopped.

    A slot never dies of a job: every exception is caught, a verdict that cannot be stored becomes a minimal
    one, a slot that fails several jobs in a row for infrastructure reasons pauses itself (growing pauses)
    and says why. A slot thread that dies anyway is restarted by a supervisor thread; when no slot can be
    kept alive, ``failed`` is set (``workshop worker`` then exits non-zero so that its supervisor restarts it).
    """

    name = "local"

    def __init__(
        self,
        store: JobStore,
        grade_job: GradeFunction,
        settings: ExecutorSettings,
        prepare_slot: Callable[[int], None] | None = None,
        health_check: HealthCheck | None = None,
        plan_warm: Callable[[int, int | None], None] | None = None,
    ):
        self.store, self.grade_job, self.settings = store, grade_job, settings
        self.prepare_slot = prepare_slot  # run once a slot holds its uid (e.g. remove a killed worker's containers)
        self.health_check = health_check  # run by an idle slot every recheck_seconds with its own uid
        self.plan_warm = plan_warm  # (uid, GPU): plan a warm slot's first sandbox, so it warms before any job
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self.failed = threading.Event()  # set when no slot could be kept alive
        self.failure_reason: str | None = None
        self.slots: list[SlotState] = []
        self.supervisor: threading.Thread | None = None
        self.running: set[int] = set()  # submission ids being graded right now
        self.worker_name = f"{os.uname().nodename}:{os.getpid()}"

    @property
    def threads(self) -> list[threading.Thread]:
        return [slot.thread for slot in self.slots if slot.thread is not None]

    def start(self) -> None:
        gpus = self.settings.gpus or (None,) * self.settings.slots
        for index, gpu in enumerate(gpus):
            slot = SlotState(index=index, gpu=gpu, name=f"{self.worker_name}:slot-{index}")
            self.slots.append(slot)
            self._start_thread(slot)
        self.supervisor = threading.Thread(target=self._supervise, name="slot-supervisor", daemon=True)
        self.supervisor.start()

    def _start_thread(self, slot: SlotState) -> None:
        slot.thread = threading.Thread(target=self._slot_main, args=(slot,), name=f"slot-{slot.index}", daemon=True)
        slot.thread.start()

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
        if self.supervisor is not None:
            self.supervisor.join(timeout=timeout)
        for slot in self.slots:
            if not slot.given_up:
                self._report(slot, "stopped", force=True)

    # -- supervision -------------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        """Restart slot threads that died; give a slot up after too many restarts in a short time."""
        while not self.stopping.wait(self.settings.supervise_seconds):
            for slot in self.slots:
                if slot.given_up or slot.thread is None or slot.thread.is_alive() or self.stopping.is_set():
                    continue
                now = time.monotonic()
                slot.restarts = [moment for moment in slot.restarts if now - moment < self.settings.restart_window]
                if len(slot.restarts) >= self.settings.max_restarts:
                    slot.given_up = True
                    log.error("slot %s gave up after %d restarts: %s", slot.name, len(slot.restarts), slot.last_error)
                    self._report(slot, "dead", reason=f"gave up after repeated crashes: {slot.last_error}", force=True)
                    continue
                slot.restarts.append(now)
                log.warning("slot %s died (%s); restarting it", slot.name, slot.last_error)
                self._start_thread(slot)
            if self.slots and all(slot.given_up for slot in self.slots):
                self.failure_reason = "; ".join(sorted({slot.last_error or "unknown error" for slot in self.slots}))
                log.critical("no worker slot can be kept alive: %s", self.failure_reason)
                self.failed.set()
                return

    def _slot_main(self, slot: SlotState) -> None:
        try:
            self._slot_loop(slot)
        except BaseException as error:  # noqa: B036 - the supervisor decides what happens next; log why it died
            slot.last_error = f"{type(error).__name__}: {error}"[:500]
            log.exception("slot %s stopped by an exception", slot.name)

    def _slot_loop(self, slot: SlotState) -> None:
        worker = f"{self.worker_name}:{threading.current_thread().name}"
        with SlotUids(pair=self.settings.warm_slots, pool=WARM_POOL) as uids:
            slot.uid = uids.current
            for uid in uids.uids:
                self._prepare(slot, uid)
            plan_first_sandbox(self.plan_warm if self.settings.warm_slots else None, uids.current, slot.gpu)
            self._report(slot, "idle", force=True)
            slot.last_check = time.monotonic()  # the executor checked the sandbox before it started
            while not self.stopping.is_set():
                if self._paused(slot) or self._recheck(slot, uids.current):
                    continue
                ran = self.run_one(worker, uids.current, slot.gpu, slot)
                if ran:  # warm slots: the next job's sandbox has been warming under the other uid
                    slot.uid = uids.advance()
                WARM_POOL.refresh(uids.current)  # warm slots: the next job's sandbox waits (if grade planned one)
                if not ran:
                    self._report(slot, "idle")
                    self.wakeup.wait(self.settings.idle_poll_seconds)
                    self.wakeup.clear()

    def _prepare(self, slot: SlotState, uid: int) -> None:
        if self.prepare_slot is not None:
            try:
                self.prepare_slot(uid)
            except Exception:  # the sandbox checks again before each job; a slot does not die of this
                log.exception("slot %s: preparing uid %s failed", slot.name, uid)

    def _paused(self, slot: SlotState) -> bool:
        """While paused, wait (a few seconds at a time) and keep saying why; False once the pause is over."""
        remaining = slot.paused_until - time.monotonic()
        if remaining <= 0:
            return False
        self._report(slot, "paused", reason=slot.pause_reason, paused_seconds=remaining)
        self.stopping.wait(min(remaining, self.settings.heartbeat_seconds))
        return True

    def _recheck(self, slot: SlotState, uid: int) -> bool:
        """Check the sandbox again when due; a failing check pauses the slot until the next check. True: paused."""
        if self.health_check is None or time.monotonic() - slot.last_check < self.settings.recheck_seconds:
            return False
        slot.last_check = time.monotonic()
        WARM_POOL.discard(uid)  # the check sweeps the uid; the next refresh starts a new one
        try:
            ok, detail = self.health_check(uid)
        except Exception as error:  # a check that cannot even run fails
            ok, detail = False, f"{type(error).__name__}: {error}"
        if ok:
            return False
        first = next((line.strip() for line in detail.splitlines() if line.strip()), "no detail")
        slot.pause_reason = f"{SANDBOX_FAILS}: {first[:300]}; no job runs here until it passes again"
        slot.paused_until = time.monotonic() + self.settings.recheck_seconds
        log.error("slot %s %s", slot.name, slot.pause_reason)
        self._report(slot, "paused", reason=slot.pause_reason, paused_seconds=self.settings.recheck_seconds, force=True)
        return True

    def _report(self, slot: SlotState, state: str, reason: str | None = None, paused_seconds: float = 0, force=False):
        """Tell the store how the slot is (a heartbeat); never raises, at most every heartbeat_seconds unless forced."""
        now = time.monotonic()
        if not force and now - slot.last_report < self.settings.heartbeat_seconds:
            return
        slot.last_report = now
        report = SlotReport(
            name=slot.name,
            state=state,
            reason=reason,
            paused_seconds=paused_seconds,
            submission_id=slot.submission_id,
            jobs_done=slot.jobs_done,
            infrastructure_failures=slot.infrastructure_failures,
            uid=slot.uid,
            gpu=slot.gpu,
        )
        try:
            self.store.report_slot(report)
        except Exception:
            log.exception("slot %s could not report its state", slot.name)

    # -- one job -----------------------------------------------------------------------------------------------

    def run_one(self, worker: str, uid: int, gpu: int | None = None, slot: SlotState | None = None) -> bool:
        """Claim and run one job; False when there was nothing to do. Never raises for a job's sake."""
        slot = slot or SlotState(index=-1, gpu=gpu, name=worker)
        try:
            job = self.store.claim_next_job(worker, self.settings.lease_seconds)
        except Exception:
            log.exception("claiming a job failed")
            return False
        if job is None:
            return False
        self.running.add(job.submission_id)
        slot.submission_id = job.submission_id
        self._report(slot, "busy", force=True)
        try:
            infrastructure = self._run_claimed(job, uid, gpu)
        finally:
            self.running.discard(job.submission_id)
            slot.submission_id = None
        self._count(slot, infrastructure)
        return True

    def _count(self, slot: SlotState, infrastructure: str | None) -> None:
        """Count the outcome; several infrastructure failures in a row pause the slot (1, 2, 4 ... minutes)."""
        slot.jobs_done += 1
        if infrastructure is None:
            slot.failures_in_a_row, slot.pauses = 0, 0
            return
        slot.infrastructure_failures += 1
        slot.failures_in_a_row += 1
        if slot.failures_in_a_row < self.settings.pause_after_failures:
            return
        seconds = min(self.settings.pause_seconds * 2**slot.pauses, self.settings.max_pause_seconds)
        slot.pauses += 1
        slot.failures_in_a_row = self.settings.pause_after_failures - 1  # one more failure after it: a longer pause
        slot.paused_until = time.monotonic() + seconds
        slot.pause_reason = (
            f"paused for {seconds:.0f} s after {self.settings.pause_after_failures} infrastructure failures in a row; "
            f"last: {infrastructure}"
        )[:1000]
        log.error("slot %s %s", slot.name, slot.pause_reason)
        self._report(slot, "paused", reason=slot.pause_reason, paused_seconds=seconds, force=True)

    def _run_claimed(self, job: ClaimedJob, uid: int, gpu: int | None = None) -> str | None:
        """Grade a claimed job and record its verdict; returns the reason when it failed for infrastructure."""
        last_report = [0.0]

        def on_progress(progress: Progress) -> None:
            now = time.monotonic()
            if now - last_report[0] >= self.settings.progress_seconds:
                last_report[0] = now
                if not self.store.renew_lease(job, self.settings.lease_seconds):
                    raise ClaimLost(f"submission {job.submission_id} was cancelled or claimed elsewhere")
                try:
                    self.store.report_progress(job, progress)
                except Exception:  # a live log that cannot be stored must not stop the job
                    log.exception("progress of submission %s could not be stored", job.submission_id)

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
                self._record(job, result)
            elif not claim_lost:  # interrupted (KeyboardInterrupt, SystemExit): hand the job back
                self._release(job)
        if result is not None and result.error_kind == "infrastructure":
            return result.message or "infrastructure failure"
        return None

    def _record(self, job: ClaimedJob, result: GradeResult) -> None:
        """Store the verdict; if that fails, store a minimal one; if that fails too, the lease expiry retries it."""
        try:
            self.store.record_result(job, result)
            return
        except Exception as error:
            log.exception("the verdict of submission %s could not be stored", job.submission_id)
            reason = f"the verdict could not be stored ({type(error).__name__}); please submit again"
        try:
            self.store.fail_job(job, reason)
        except Exception:
            log.exception("submission %s: not even a minimal verdict could be stored", job.submission_id)

    def _release(self, job: ClaimedJob) -> None:
        try:
            self.store.release_job(job, "the worker stopped while running it")
        except Exception:
            log.exception("submission %s could not be handed back; its lease will expire", job.submission_id)


EXECUTORS: dict[str, type[LocalExecutor]] = {"local": LocalExecutor}  # WORKSHOP_EXECUTOR names one of these


def get_executor(name: str) -> type[LocalExecutor]:
    """The executor class registered under ``name``; a RuntimeError lists the choices for an unknown one."""
    if name not in EXECUTORS:
        raise RuntimeError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]
