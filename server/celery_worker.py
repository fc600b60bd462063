"""The Celery executor's consumers: ``workshop worker`` with WORKSHOP_EXECUTOR=celery.

One Celery worker process per slot or GPU (solo pool: concurrency 1, prefetch 1, tickets acknowledged late).
Each runs LocalExecutor's slot machinery without its polling: a ticket (server/celery_app.py) makes the slot claim
the next job in fair order through its job store — the database, or the worker API with WORKSHOP_SERVER_URL —
and run it. A slot whose sandbox check fails refuses to consume: at start it never connects to the broker until
its check passes (it reports itself paused and why); when its periodic check fails, it hands the ticket back
and stops consuming until the check passes again.
With more than one slot, this process starts one child per slot (``python -m server.celery_slot``) and
restarts a child that dies.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from celery.exceptions import Reject
from celery.signals import worker_ready
from flask import Flask

from grader.executor import SANDBOX_FAILS, LocalExecutor, SlotReport, SlotState
from grader.sandbox import SandboxUnavailable
from grader.warm_pool import POOL as WARM_POOL
from grader.warm_pool import SlotUids, plan_first_sandbox
from server.celery_app import TICKET_TASK, make_celery

log = logging.getLogger(__name__)
_runner: TicketRunner | None = None
_stop: threading.Event | None = None  # this process's stop request (SIGTERM, SIGINT), seen by the Celery loop too
RESTART_DELAY_SECONDS = 5


@dataclass(frozen=True)
class SlotMaker:
    """How this module builds a slot (server.executor_runtime's functions, handed in: no import cycle)."""

    build: Callable[..., LocalExecutor]  # (app, slots=1, gpus=()) -> an executor whose sandbox check just passed
    store_for: Callable  # (app) -> (job store, grade function)


class TicketRunner:
    """What the ticket task does in this process: one claim (fair order) and, if it succeeds, one job."""

    def __init__(self, executor: LocalExecutor, slot: SlotState, uids: SlotUids):
        self.executor, self.slot, self.uids = executor, slot, uids
        self.worker = slot.name
        self.paused = False  # set when the periodic sandbox check failed: the consumer stops

    def run_ticket(self) -> None:
        if self.executor._recheck(self.slot, self.uids.current):  # noqa: SLF001 - the slot's own periodic check
            self.paused = True
            os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown: stop consuming after this ticket
            raise Reject("this worker's sandbox check failed; another worker takes the ticket", requeue=True)
        if self.executor.run_one(self.worker, self.uids.current, self.slot.gpu, self.slot):
            self.slot.uid = self.uids.advance()  # warm slots: the next job's sandbox warmed under the other uid
        WARM_POOL.refresh(self.uids.current)  # warm slots: the next ticket's sandbox waits (if grade planned one)
        self.executor._report(self.slot, "idle", force=True)  # noqa: SLF001


def ticket() -> None:
    """The task behind each ticket (its arguments, if any, are informative only)."""
    if _runner is None:
        raise Reject("this process is not a workshop slot", requeue=True)
    _runner.run_ticket()


def consume_slot(
    app: Flask, maker: SlotMaker, index: int, gpu: int | None, stop: threading.Event, say=log.info
) -> None:
    """Run one slot's consumer until ``stop`` (or a signal); while the sandbox check fails, consume nothing."""
    global _stop
    _stop = stop
    while not stop.is_set():
        try:
            executor = maker.build(app, slots=1, gpus=(gpu,) if gpu is not None else ())
        except SandboxUnavailable as error:
            refuse(app, maker, index, gpu, str(error), say)
            stop.wait(float(app.config["SANDBOX_RECHECK_SECONDS"]))
            continue
        paused = _consume(app, executor, index, gpu, say)
        if not paused:
            return
        install_stop_handlers(stop)


def refuse(app: Flask, maker: SlotMaker, index: int, gpu: int | None, reason: str, say) -> None:
    """Say (log and slot report) that this slot consumes nothing because its sandbox check fails."""
    first = next((line for line in reason.splitlines() if line.strip()), reason)
    message = f"{SANDBOX_FAILS}: {first[:300]}; this worker takes no tickets until it passes"
    say(message)
    store, _ = maker.store_for(app)
    seconds = float(app.config["SANDBOX_RECHECK_SECONDS"])
    name = f"{os.uname().nodename}:{os.getpid()}:slot-{index}"
    try:
        store.report_slot(SlotReport(name=name, state="paused", reason=message, paused_seconds=seconds, gpu=gpu))
    except Exception:
        log.exception("the paused slot could not report itself")


def _consume(app: Flask, executor: LocalExecutor, index: int, gpu: int | None, say) -> bool:
    """Hold a sandbox uid and consume tickets until Celery stops; True when it stopped for a failed check."""
    global _runner
    slot = SlotState(index=index, gpu=gpu, name=f"{executor.worker_name}:slot-{index}")
    celery = make_celery(app.config)
    celery.task(name=TICKET_TASK, acks_late=True, reject_on_worker_lost=True)(ticket)
    with SlotUids(pair=executor.settings.warm_slots, pool=WARM_POOL) as uids:
        slot.uid = uid = uids.current
        if executor.prepare_slot is not None:
            for each in uids.uids:
                executor.prepare_slot(each)
        slot.last_check = time.monotonic()  # build_executor checked the sandbox
        plan_first_sandbox(executor.plan_warm if executor.settings.warm_slots else None, uid, gpu)
        WARM_POOL.refresh(uid)  # warm slots: the first ticket's sandbox starts while the consumer waits
        executor._report(slot, "idle", force=True)  # noqa: SLF001 - the instructor sees the slot at once
        _runner = TicketRunner(executor, slot, uids)
        done = threading.Event()
        beat = threading.Thread(target=_heartbeat, args=(executor, slot, done), name="slot-heartbeat", daemon=True)
        beat.start()
        say(f"Slot {index} consumes tickets from {app.config['CELERY_QUEUE']} (sandbox uid {uid}, GPU {gpu}).")
        try:
            _run_celery(celery, f"slot{index}-{os.getpid()}@{os.uname().nodename}")
        finally:
            done.set()
            paused = _runner.paused
            _runner = None
            state = "paused" if paused else "stopped"
            executor._report(slot, state, reason=slot.pause_reason if paused else None, force=True)  # noqa: SLF001
    return paused


def _heartbeat(executor: LocalExecutor, slot: SlotState, done: threading.Event) -> None:
    """Report the slot (idle or busy, its job) every heartbeat_seconds, as a polling slot does."""
    while not done.wait(executor.settings.heartbeat_seconds):
        executor._report(slot, "busy" if slot.submission_id else "idle", force=True)  # noqa: SLF001


def _run_celery(celery, hostname: str) -> None:
    warnings.filterwarnings("ignore", message=".*superuser privileges.*")  # slots run as root to start bwrap
    worker = celery.Worker(
        hostname=hostname,
        pool="solo",
        concurrency=1,
        prefetch_multiplier=1,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
        quiet=True,
    )
    worker.start()  # returns after a warm shutdown (SIGTERM, SIGINT, or a failed sandbox check)


@worker_ready.connect(weak=False, dispatch_uid="workshop-wake-every-second")
def _wake_every_second(sender=None, **_) -> None:
    """An idle event loop with no timer (no heartbeats, no gossip) would sleep through a shutdown request until
    the next message: a one-second timer makes it look at its shutdown flag, and at ours (a SIGTERM that came
    before Celery installed its own handler)."""
    sender.timer.call_repeatedly(1.0, _stop_if_asked)


def _stop_if_asked() -> None:
    if _stop is not None and _stop.is_set():
        from celery.worker import state

        state.should_stop = 0  # a warm shutdown, as Celery's own SIGTERM handler asks for


def install_stop_handlers(stop: threading.Event) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())


def run_consumers(
    app: Flask, maker: SlotMaker, slots: int, gpus: tuple[int, ...] = (), say: Callable[[str], None] = log.info
) -> None:
    """``workshop worker`` for the Celery executor: one slot here, or one child process per slot or GPU."""
    stop = threading.Event()
    install_stop_handlers(stop)
    places = list(gpus) if gpus else [None] * max(1, slots)
    if len(places) == 1:
        say(f"Celery worker on {app.config['BROKER_URL'].split('@')[-1]}; Ctrl-C stops it.")
        consume_slot(app, maker, 0, places[0], stop, say)
        return
    _supervise(app, places, stop, say)


def _child(app: Flask, index: int, gpu: int | None) -> subprocess.Popen:
    env = dict(os.environ)
    for key in ("SERVER_URL", "WORKER_TOKEN", "BROKER_URL", "EXECUTOR", "SANDBOX"):
        if app.config.get(key):
            env[f"WORKSHOP_{key}"] = str(app.config[key])
    command = [sys.executable, "-m", "server.celery_slot", "--slot", str(index)]
    command += ["--gpu", str(gpu)] if gpu is not None else []
    return subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervising worker dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _supervise(app: Flask, places: list, stop: threading.Event, say) -> None:
    """One child per slot; a child that exits is started again after a pause; all stop with this process."""
    children = {index: _child(app, index, gpu) for index, gpu in enumerate(places)}
    say(f"Celery workers: {len(children)} slot process(es); Ctrl-C stops them.")
    while not stop.wait(1.0):
        for index, child in list(children.items()):
            if child.poll() is not None:
                say(f"slot {index} exited with {child.returncode}; starting it again in {RESTART_DELAY_SECONDS} s")
                if stop.wait(RESTART_DELAY_SECONDS):
                    break
                children[index] = _child(app, index, places[index])
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
