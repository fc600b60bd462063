"""A slot's heartbeat says which sandbox uid and GPU it holds, and the job store keeps both."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from grader.executor import ExecutorSettings, LocalExecutor, SlotReport
from server.db import new_session
from server.job_store import DatabaseJobStore
from server.models import WorkerSlot


class FakeStore:
    """No jobs ever; remembers every slot report."""

    def __init__(self):
        self.reports: list[SlotReport] = []
        self.reported = threading.Event()

    def claim_next_job(self, worker, lease_seconds):
        return None

    def report_slot(self, slot: SlotReport) -> None:
        self.reports.append(slot)
        self.reported.set()


def never_graded(*args):
    raise AssertionError("no job was queued")


def run_until_reported(settings: ExecutorSettings) -> list[SlotReport]:
    store = FakeStore()
    executor = LocalExecutor(store, never_graded, settings)
    executor.start()
    try:
        assert store.reported.wait(10), "no slot reported itself"
    finally:
        executor.stop(timeout=5)
    return store.reports


def test_reports_carry_the_uid_and_the_gpu_of_each_slot():
    reports = run_until_reported(ExecutorSettings(gpus=(3,), idle_poll_seconds=0.05))
    first = reports[0]
    assert first.state == "idle" and first.name.endswith(":slot-0")
    assert first.gpu == 3
    assert isinstance(first.uid, int) and first.uid >= 1000
    stopped = [report for report in reports if report.state == "stopped"]
    assert stopped and stopped[-1].uid == first.uid and stopped[-1].gpu == 3


def test_a_cpu_slot_reports_no_gpu():
    reports = run_until_reported(ExecutorSettings(slots=1, idle_poll_seconds=0.05))
    assert reports[0].gpu is None and isinstance(reports[0].uid, int)


def test_the_job_store_keeps_uid_and_gpu(app):
    store = DatabaseJobStore(app)
    store.report_slot(SlotReport(name="gpu-box:4242:slot-1", state="busy", submission_id=7, uid=61001, gpu=1))
    store.report_slot(SlotReport(name="cpu-box:17:slot-0", state="idle", uid=61002))
    with new_session(app) as db:
        rows = {row.name: row for row in db.scalars(select(WorkerSlot))}
    assert (rows["gpu-box:4242:slot-1"].uid, rows["gpu-box:4242:slot-1"].gpu) == (61001, 1)
    assert rows["gpu-box:4242:slot-1"].current_submission_id == 7
    assert (rows["cpu-box:17:slot-0"].uid, rows["cpu-box:17:slot-0"].gpu) == (61002, None)


def test_an_idle_slot_checks_its_sandbox_again_and_a_failing_check_pauses_it():
    """Every recheck_seconds an idle slot runs the self-check with its own uid; failing, it pauses and says why."""
    store, uids = FakeStore(), []

    def failing_check(uid):
        uids.append(uid)
        return False, "network: the sandbox reached 127.0.0.1:8080"

    settings = ExecutorSettings(slots=1, idle_poll_seconds=0.02, recheck_seconds=0.1)
    executor = LocalExecutor(store, never_graded, settings, health_check=failing_check)
    executor.start()
    try:
        for _ in range(250):
            if any(report.state == "paused" for report in store.reports):
                break
            time.sleep(0.02)
    finally:
        executor.stop(timeout=5)
    paused = [report for report in store.reports if report.state == "paused"]
    assert paused, [report.state for report in store.reports]
    assert paused[0].reason.startswith("sandbox check failed: network: the sandbox reached 127.0.0.1:8080")
    assert uids and set(uids) == {store.reports[0].uid}


def test_a_passing_recheck_keeps_the_slot_idle():
    store, calls = FakeStore(), []
    settings = ExecutorSettings(slots=1, idle_poll_seconds=0.02, recheck_seconds=0.05)
    executor = LocalExecutor(store, never_graded, settings, health_check=lambda uid: calls.append(uid) or (True, ""))
    executor.start()
    try:
        for _ in range(250):
            if len(calls) >= 2:
                break
            time.sleep(0.02)
    finally:
        executor.stop(timeout=5)
    assert len(calls) >= 2 and not any(report.state == "paused" for report in store.reports)
