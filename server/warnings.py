"""What the instructor must know at once, shown across the instructor's pages: the sandbox does not hold (or
there is none), stand-in weights are in use, no worker slot is alive.

The sandbox self-check takes a sandbox uid and a fraction of a second, so it never runs on a page load: its
last result is kept in ``app.extensions["sandbox_check"]`` and a background thread refreshes it at most every
``SANDBOX_CHECK_SECONDS``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from grader.executor import SANDBOX_FAILS
from server.catalog import catalog
from server.models import WorkerSlot, utcnow

SANDBOX_CHECK_SECONDS = 600  # the self-check runs at most this often (and only while instructors look)
ALIVE_SECONDS = 120  # a slot counts as alive when it reported within this and is idle or busy


@dataclass(frozen=True)
class Alert:
    key: str  # the element id on the page: sandbox, stand-in-weights, no-slots
    text: str


@dataclass
class SandboxCheck:
    """The last self-check of the configured sandbox: when it started, whether it passed, and why not."""

    started: float | None = None  # time.monotonic() of the last start
    ok: bool | None = None  # None: no result yet
    detail: str = ""
    running: bool = False
    finished: float | None = None  # time.monotonic() of the last result
    lock: threading.Lock = field(default_factory=threading.Lock)


def run_check(app: Flask) -> tuple[bool, str]:
    """Run the sandbox self-check; (passed, the table or the error)."""
    from server.executor_runtime import check_isolation

    try:
        with app.app_context():  # it runs in a thread of its own, outside any request
            rows, table = check_isolation(app)
    except Exception as error:  # a backend that cannot even start is a failed check, not a broken page
        return False, f"{type(error).__name__}: {error}"
    return all(row.ok for row in rows), table


def sandbox_check(app: Flask) -> SandboxCheck:
    """The cached check; starts a refresh in the background when none ran in the last SANDBOX_CHECK_SECONDS.

    Only a root process can run it (the sandbox switches each job to its own uid): a root `workshop serve`
    runs its web workers as WORKSHOP_WEB_USER, where the check would always fail, so there it is not run; the
    slots' process checks the sandbox when it starts and refuses to run without one (then no slot is alive).
    """
    state = app.extensions.setdefault("sandbox_check", SandboxCheck())
    if os.geteuid() != 0:
        state.detail = (
            f"not checked by the web process (uid {os.geteuid()}); each worker slot checks when it starts and "
            "every 10 minutes while idle"
        )
        return state
    with state.lock:
        due = state.started is None or time.monotonic() - state.started >= SANDBOX_CHECK_SECONDS
        if state.running or not due:
            return state
        state.started, state.running = time.monotonic(), True
    threading.Thread(target=_refresh, args=(app, state), name="sandbox-check", daemon=True).start()
    return state


def _refresh(app: Flask, state: SandboxCheck) -> None:
    ok, detail = False, "the check stopped unexpectedly"
    try:
        ok, detail = run_check(app)
    finally:
        with state.lock:
            state.ok, state.detail, state.running, state.finished = ok, detail, False, time.monotonic()


def sandbox_summary(app: Flask) -> str:
    """One line about the sandbox for the workers page."""
    name = app.config["SANDBOX"]
    if name == "none":
        return "none: there is NO sandbox"
    state = sandbox_check(app)
    if state.ok is None:
        return f"{name}: {'checking now' if state.running else state.detail or 'not checked yet'}"
    ago = int(time.monotonic() - state.finished) if state.finished is not None else 0
    return f"{name}: {'passed' if state.ok else 'FAILS'} (last checked {ago} s ago, at most every 10 minutes)"


def failing_slots(db) -> list[WorkerSlot]:
    """Slots alive in the last ALIVE_SECONDS that paused themselves because their sandbox check failed."""
    since = utcnow() - timedelta(seconds=ALIVE_SECONDS)
    failing = (WorkerSlot.state == "paused", WorkerSlot.reason.startswith(SANDBOX_FAILS, autoescape=True))
    return list(db.scalars(select(WorkerSlot).where(WorkerSlot.heartbeat_at >= since, *failing)))


def sandbox_warning(app: Flask, db) -> Alert | None:
    name = app.config["SANDBOX"]
    if name == "none":
        return Alert(
            "sandbox",
            "There is NO sandbox (WORKSHOP_SANDBOX=none): submitted code runs with the server's own rights. "
            "Use this only on a machine of your own, never with participants you do not trust.",
        )
    state = sandbox_check(app)
    if state.ok is False:
        first_line = next((line for line in state.detail.splitlines() if line.strip()), "")
        return Alert(
            "sandbox",
            f"The {name} sandbox check fails on this host ({first_line[:300]}); workers refuse to start. "
            "Run `workshop sandbox check` on the server for the full table.",
        )
    failing = failing_slots(db)
    if failing:
        return Alert(
            "sandbox",
            f"The sandbox check fails on {len(failing)} worker slot(s) ({failing[0].name}: {failing[0].reason}); "
            "they run no job until it passes again. Run `workshop sandbox check` there for the full table.",
        )
    return None


def stand_in_files(app: Flask) -> list[str]:
    """The weights files an exercise allows that are random-init stand-ins in the configured KERAS_HOME."""
    from grader.weights import catalog_weights, is_stand_in

    models_dir = Path(app.config["KERAS_HOME"]) / "models"
    if not models_dir.is_dir():
        return []
    return [item.file_name for item in catalog_weights(catalog(app).values()) if is_stand_in(models_dir, item)]


def stand_in_warning(app: Flask) -> Alert | None:
    names = stand_in_files(app)
    if not names:
        return None
    return Alert(
        "stand-in-weights",
        f"Stand-in weights are in use ({', '.join(names)}): pretrained models start from random values, so "
        "their scores mean nothing. Run `workshop prepare-weights` where the internet can be reached.",
    )


def alive_slots(db) -> int:
    since = utcnow() - timedelta(seconds=ALIVE_SECONDS)
    alive = (WorkerSlot.heartbeat_at >= since, WorkerSlot.state.in_(("idle", "busy")))
    return db.scalar(select(func.count(WorkerSlot.id)).where(*alive)) or 0


def no_slot_warning(db) -> Alert | None:
    if alive_slots(db):
        return None
    return Alert(
        "no-slots",
        "No worker slot is alive (none idle or busy reported in the last 2 minutes): submissions wait in the "
        "queue until a worker runs (`workshop serve` or `workshop worker`). See Workers.",
    )


def instructor_warnings(app: Flask, db) -> list[Alert]:
    """Every warning that holds now, the most serious first."""
    found = (sandbox_warning(app, db), no_slot_warning(db), stand_in_warning(app))
    return [warning for warning in found if warning is not None]
