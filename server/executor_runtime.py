"""Starting the configured executor next to the app (``workshop serve``) or on its own (``workshop worker``)."""

from __future__ import annotations

import functools
import logging
import signal
import threading
from collections.abc import Callable

from flask import Flask, current_app

from grader.executor import ExecutorSettings, LocalExecutor, get_executor
from grader.sandbox import SandboxUnavailable, get_sandbox
from grader.sandbox.check import CheckRow, format_table, run_sandbox_check
from grader.sandbox.locks import SlotLock
from server.grading_settings import grading_settings
from server.job_store import DatabaseJobStore, grade_claimed_job

log = logging.getLogger(__name__)
_VERIFIED: set[tuple[str, str]] = set()  # (backend, work dir) whose self-check passed in this process


def check_isolation(app: Flask, backend: str | None = None) -> tuple[list[CheckRow], str]:
    """Run the sandbox self-check on this host with a free slot's uid; returns the rows and their table."""
    settings = grading_settings(app, backend)
    work_dir = settings.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    with SlotLock() as uid:
        rows = run_sandbox_check(settings.sandbox, uid=uid, work_dir=work_dir, options=dict(settings.sandbox_options))
    return rows, format_table(rows)


def require_isolation(app: Flask) -> None:
    """Refuse to run jobs where the sandbox does not hold; WORKSHOP_SANDBOX=none only with a loud warning."""
    name = app.config["SANDBOX"]
    if name == "none":
        get_sandbox("none").check_available()  # prints the warning; choosing none is always explicit
        return
    key = (name, str(app.config["WORK_DIR"]))
    if key in _VERIFIED:
        return
    rows, table = check_isolation(app)
    if not all(row.ok for row in rows):
        raise SandboxUnavailable(f"the {name} sandbox does not isolate jobs on this host; not starting:\n{table}")
    _VERIFIED.add(key)


def build_executor(
    app: Flask, slots: int | None = None, gpus: tuple[int, ...] = (), remote: bool | None = None
) -> LocalExecutor:
    """Worker slots (LocalExecutor's) on the database, or, with WORKSHOP_SERVER_URL (``remote``), on the worker
    API; refuses to start where the sandbox cannot run. The Celery executor's consumers run these slots too."""
    executor_class = get_executor("local" if app.config["EXECUTOR"] == "celery" else app.config["EXECUTOR"])
    require_isolation(app)
    settings = ExecutorSettings(
        slots=len(gpus) or int(slots or app.config["SLOTS"]),
        gpus=tuple(gpus),
        lease_seconds=app.config["LEASE_SECONDS"],
        recheck_seconds=app.config["SANDBOX_RECHECK_SECONDS"],
        warm_slots=warm_slots_apply(app),
    )
    store, grade_job = job_store_for(app, remote)
    health = functools.partial(slot_sandbox_check, app) if app.config["SANDBOX"] != "none" else None
    remote = bool(app.config.get("SERVER_URL")) if remote is None else remote
    plan = None if remote else functools.partial(plan_first_warm_sandbox, app)  # a remote worker has no data yet
    return executor_class(store, grade_job, settings, functools.partial(prepare_slot, app), health, plan)


def plan_first_warm_sandbox(app: Flask, uid: int, gpu: int | None) -> None:
    """Warm slots: a slot's first sandbox is planned as for the first exercise on the active data set (the
    exercises differ mostly in their time limit, which a warm sandbox takes from its job)."""
    from grader.data import dataset_paths
    from grader.grading import plan_warm_slot
    from server.catalog import catalog
    from server.datasets import active_dataset_or_default

    exercises = list(catalog(app).values())
    if exercises:
        dataset = dataset_paths(app.config["DATA_DIR"], active_dataset_or_default(app))
        plan_warm_slot(exercises[0], dataset, grading_settings(app, warm=True), uid, gpu)


def warm_slots_apply(app: Flask) -> bool:
    """Whether this server's worker slots run warm (WORKSHOP_WARM_SLOTS, bwrap only): they then hold two uids."""
    settings = grading_settings(app, warm=True)
    return settings.warm_slots and settings.sandbox == "bwrap"


def job_store_for(app: Flask, remote: bool | None = None):
    """(the job store, the grade function): the database's, or the worker API's when WORKSHOP_SERVER_URL is set."""
    remote = bool(app.config.get("SERVER_URL")) if remote is None else remote
    if not remote:
        return DatabaseJobStore(app), functools.partial(grade_claimed_job, app, grading_settings(app, warm=True))
    from pathlib import Path

    from server.catalog import catalog
    from server.remote_store import RemoteJobStore, WorkerClient, grade_remote
    from server.worker_cache import WorkerCache

    token = app.config.get("WORKER_TOKEN") or ""
    if not token:
        raise RuntimeError("a remote worker needs its worker token: --token or WORKSHOP_WORKER_TOKEN")
    store = RemoteJobStore(WorkerClient(app.config["SERVER_URL"], token))
    settings = grading_settings(app, warm=True)
    cache = WorkerCache(store.client, Path(app.instance_path) / "worker-cache", settings.weights_dir)
    return store, functools.partial(grade_remote, store, cache, catalog(app), settings)


def slot_sandbox_check(app: Flask, uid: int) -> tuple[bool, str]:
    """A slot's periodic self-check with the uid it holds: (every row passed, the failing rows in one line)."""
    settings = grading_settings(app)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    options = dict(settings.sandbox_options)
    rows = run_sandbox_check(settings.sandbox, uid=uid, work_dir=settings.work_dir, options=options)
    failing = [f"{row.name}: {row.detail}" for row in rows if not row.ok]
    return not failing, "; ".join(failing)


def prepare_slot(app: Flask, uid: int) -> None:
    """When a slot starts, it removes what a killed worker left running under its uid (Docker containers)."""
    backend = grading_settings(app).backend()
    remove_leftovers = getattr(backend, "remove_leftovers", None)
    if remove_leftovers is None:
        return
    with SlotLock(uid=uid):
        removed = remove_leftovers(uid)
    if removed:
        log.warning("removed %d container(s) that a stopped worker left running: %s", len(removed), ", ".join(removed))


def start_executor(app: Flask, slots: int | None = None, gpus: tuple[int, ...] = ()) -> LocalExecutor:
    executor = build_executor(app, slots, gpus)
    executor.start()
    app.extensions["executor"] = executor
    return executor


def notify_executor() -> None:
    """Tell an in-process executor that a job is waiting, so it starts at once instead of at its next poll."""
    executor = current_app.extensions.get("executor")
    if executor is not None:
        executor.notify()


def init_app(app: Flask) -> None:
    app.before_request(functools.partial(ensure_dispatcher, app))
    if app.config["START_EXECUTOR"] and app.config["EXECUTOR"] != "celery":
        start_executor(app)


def ensure_dispatcher(app: Flask) -> None:
    """With the Celery executor, the web process publishes: its dispatcher starts when gunicorn's worker has
    booted (``workshop serve``), or with the first request (any other server)."""
    if app.config["EXECUTOR"] == "celery" and "executor" not in app.extensions:
        from server.celery_app import start_dispatcher

        start_dispatcher(app)


class WorkerFailed(RuntimeError):
    """No worker slot could be kept alive: the worker exits non-zero so that its supervisor restarts it."""


def run_worker(app: Flask, slots: int, gpus: tuple[int, ...] = (), say: Callable[[str], None] = log.info) -> None:
    """Run worker slots until SIGINT or SIGTERM (``workshop worker`` and the slots' process of a root serve)."""
    if app.config["EXECUTOR"] == "celery":  # Celery consumers, one process per slot (server/celery_worker.py)
        from server.celery_worker import run_consumers

        return run_consumers(app, slot_maker(), slots, gpus, say)
    executor = start_executor(app, slots, gpus)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say(f"Worker running with {len(gpus) or slots} slot(s); Ctrl-C stops it.")
    while not stop.wait(1.0):
        if executor.failed.is_set():
            executor.stop(timeout=1)
            raise WorkerFailed(f"no worker slot can be kept alive: {executor.failure_reason}")
    executor.stop()


def build_checked(app: Flask, slots: int | None = None, gpus: tuple[int, ...] = ()) -> LocalExecutor:
    """build_executor after a fresh sandbox check (a Celery slot checks again each time it starts consuming)."""
    _VERIFIED.discard((app.config["SANDBOX"], str(app.config["WORK_DIR"])))
    return build_executor(app, slots, gpus)


def slot_maker():
    """What server.celery_worker builds its slots with (handed over, so that it never imports this module)."""
    from server.celery_worker import SlotMaker

    return SlotMaker(build=build_checked, store_for=job_store_for)
