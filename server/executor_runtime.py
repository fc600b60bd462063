"""Starting the configured executor next to the app (``workshop serve``) or on its own (``workshop worker``)."""

from __future__ import annotations

import functools

from flask import Flask, current_app

from grader.executor import ExecutorSettings, LocalExecutor
from grader.sandbox import get_sandbox
from server.jobs import DatabaseJobStore, grade_claimed_job

EXECUTORS = {"local": LocalExecutor}


def build_executor(app: Flask, slots: int | None = None) -> LocalExecutor:
    """The executor named by WORKSHOP_EXECUTOR; refuses to start where the sandbox cannot run."""
    name = app.config["EXECUTOR"]
    if name not in EXECUTORS:
        raise RuntimeError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    get_sandbox(app.config["SANDBOX"]).check_available()
    settings = ExecutorSettings(slots=int(slots or app.config["SLOTS"]), lease_seconds=app.config["LEASE_SECONDS"])
    grade_job = functools.partial(grade_claimed_job, app)
    return EXECUTORS[name](DatabaseJobStore(app), grade_job, settings)


def start_executor(app: Flask, slots: int | None = None) -> LocalExecutor:
    executor = build_executor(app, slots)
    executor.start()
    app.extensions["executor"] = executor
    return executor


def notify_executor() -> None:
    """Tell an in-process executor that a job is waiting, so it starts at once instead of at its next poll."""
    executor = current_app.extensions.get("executor")
    if executor is not None:
        executor.notify()


def init_app(app: Flask) -> None:
    if app.config["START_EXECUTOR"]:
        start_executor(app)
