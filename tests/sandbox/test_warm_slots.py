"""Warm slots: a slot's next sandbox is started before its job, holds nothing of it, and runs it like a cold one."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from grader.data import dataset_paths
from grader.grading import GradingSettings, grade, limits_for, warm_slots_default
from grader.sandbox import BwrapSandbox, processes_of_uid
from grader.sandbox.limits import job_cpus
from grader.sandbox.warm import warm_argv
from grader.warm_pool import WarmPlan, WarmPool
from server.catalog import catalog
from server.grading_settings import grading_settings, switch_on

UID = 61078
ROOT = Path(__file__).resolve().parents[2]

# reports what the job sees, then ends without training (os._exit skips the harness's own work)
REPORTER = """
import json, os, resource, sys
facts = {
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[1],
    "data_mb": resource.getrlimit(resource.RLIMIT_DATA)[1] // 2**20,
    "cpu_seconds": resource.getrlimit(resource.RLIMIT_CPU)[1],
    "uid": os.getuid(),
    "stdin": os.readlink("/proc/self/fd/0"),
    "fds": sorted(os.listdir("/proc/self/fd")),
    "code": sorted(os.listdir("/job/code")),
    "spec_keys": sorted(json.load(open("/job/spec.json"))),
    "tensorflow_loaded": "tensorflow" in sys.modules,
}
print("FACTS " + json.dumps(facts), flush=True)
os._exit(0)
"""


class QueueStore:
    """An in-memory job store for one slot: hands out ``queue``'s codes in order (subclasses record results)."""

    def __init__(self, queue: list[str]):
        self.queue, self.claimed = queue, 0

    def claim_next_job(self, worker, lease_seconds):
        from grader.executor import ClaimedJob

        if not self.queue:
            return None
        self.claimed += 1
        return ClaimedJob(self.claimed - 1, "t", self.queue.pop(0), "cnn-from-scratch", "synthetic")

    def renew_lease(self, *args):
        return True

    def report_progress(self, *args): ...
    def report_slot(self, *args): ...
    def release_job(self, *args): ...
    def fail_job(self, *args):
        return True


def facts(log: str) -> dict:
    lines = [line for line in log.splitlines() if line.startswith("FACTS ")]
    assert lines, log[-2000:]
    return json.loads(lines[-1][len("FACTS ") :])


def test_warm_argv_hands_the_harness_its_pipes_before_the_spec():
    argv = ["bwrap", "--", "python", "-I", "/opt/workshop/harness.py", "/job/spec.json"]
    assert warm_argv(argv, 7, 8)[-5:] == ["/opt/workshop/harness.py", "--warm", "7", "8", "/job/spec.json"]


def test_the_servers_slots_run_warm_by_default_and_the_cli_stays_cold(app, monkeypatch, tmp_path):
    from server import create_app
    from server.executor_runtime import warm_slots_apply

    assert warm_slots_default({}) is False  # GradingSettings alone (tests, benchmarks): cold unless asked
    assert warm_slots_default({"WORKSHOP_WARM_SLOTS": "1"}) is True
    assert all(switch_on(value) for value in (True, 1, "1", "on", "true"))
    assert not any(switch_on(value) for value in (False, 0, "0", "off", ""))
    monkeypatch.delenv("WORKSHOP_WARM_SLOTS", raising=False)
    monkeypatch.setenv("WORKSHOP_INSTANCE_PATH", str(tmp_path))
    fresh = create_app()
    assert grading_settings(fresh, warm=True).warm_slots is True  # worker slots: on by default
    assert warm_slots_apply(fresh) is True
    assert grading_settings(fresh).warm_slots is False  # `workshop grade`, `exercises check`
    fresh.config["SANDBOX"] = "docker"
    assert warm_slots_apply(fresh) is False  # bwrap only
    monkeypatch.setenv("WORKSHOP_WARM_SLOTS", "0")
    assert grading_settings(create_app(), warm=True).warm_slots is False  # turned off


@pytest.fixture
def plan(app, data_dir, tmp_path):
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path, warm_slots=True)
    limits = limits_for(exercise, 20)
    public = dataset_paths(data_dir, "synthetic").public
    return exercise, settings, WarmPlan(BwrapSandbox(), settings.jobs_dir, limits, public, None, UID, None)


@pytest.mark.slow  # imports TensorFlow in the sandbox twice
@pytest.mark.sandbox
def test_a_warm_sandbox_waits_empty_then_runs_its_job_as_the_slot_uid(plan, data_dir, monkeypatch):
    exercise, settings, warm_plan = plan
    pool = WarmPool()
    monkeypatch.setattr("grader.grading.POOL", pool)
    pool.plans[UID] = warm_plan
    assert pool.refresh(UID)
    (_key, warm) = pool.waiting[UID]
    time.sleep(2)
    assert warm.alive()
    assert os.listdir(warm.job_dir / "code") == [] and warm.spec_path.read_text() == ""  # nothing of anyone yet
    assert processes_of_uid(UID), "the warm sandbox runs as the slot's uid"
    result = grade(REPORTER, exercise, dataset_paths(data_dir, "synthetic"), settings, time_limit=20, uid=UID)
    seen = facts(result.log)
    assert UID not in pool.waiting, "a warm sandbox serves one job"
    assert seen["uid"] == UID and seen["code"] == ["submission.py"]
    assert seen["tensorflow_loaded"], "TensorFlow was imported before the job arrived"
    assert seen["stdin"] == "/dev/null" and seen["fds"] == ["0", "1", "2", "3"], "the hand-off pipe is closed"
    assert {"code_dir", "out_dir", "time_limit", "data_dir"} <= set(seen["spec_keys"])
    limits = warm_plan.limits  # the harness lowered the roomy start-up limits to a cold job's (plus its own share)
    assert seen["nproc"] == limits.max_processes, seen
    assert 2 * limits.memory_mb <= seen["data_mb"] < 3 * limits.memory_mb, seen
    cold_cpu = int(limits.wall_seconds * job_cpus(limits)) + 10 + 5  # a cold job's hard RLIMIT_CPU
    assert cold_cpu < seen["cpu_seconds"] <= cold_cpu + 120, seen  # plus what the imports took, no more
    assert not warm.job_dir.exists() and processes_of_uid(UID) == []


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_trivial_job_in_a_warm_sandbox_is_scored(plan, data_dir, monkeypatch):
    exercise, settings, warm_plan = plan
    pool = WarmPool()
    monkeypatch.setattr("grader.grading.POOL", pool)
    pool.plans[UID] = warm_plan
    pool.refresh(UID)
    code = (ROOT / "bench" / "trivial_submission.py").read_text(encoding="utf-8")
    result = grade(code, exercise, dataset_paths(data_dir, "synthetic"), settings, time_limit=60, uid=UID)
    assert result.status == "done", (result.error_kind, result.message, result.log[-1500:])
    assert result.public_score is not None
    assert result.run_info["warm_start"] == "true" and float(result.run_info["train_seconds"]) >= 0


@pytest.mark.sandbox
def test_a_stale_or_outdated_warm_sandbox_is_replaced(plan, tmp_path):
    _exercise, _settings, warm_plan = plan
    copy = tmp_path / "public"  # the session's data set is never modified
    shutil.copytree(warm_plan.data_dir, copy)
    os.chmod(tmp_path, 0o755)  # noqa: S103 - bwrap binds it for the uid
    warm_plan = replace(warm_plan, data_dir=copy)
    pool = WarmPool()
    pool.plans[UID] = warm_plan
    try:
        assert pool.refresh(UID)
        first = pool.waiting[UID][1]
        assert pool.refresh(UID) and pool.waiting[UID][1] is first  # still fresh: kept
        (warm_plan.data_dir / "test.csv").touch()  # the data set changed on disk
        os.utime(warm_plan.data_dir / "test.csv", ns=(1, 1))
        assert pool.refresh(UID)
        second = pool.waiting[UID][1]
        assert second is not first and not first.job_dir.exists()
        pool.plans[UID] = replace(warm_plan, max_seconds=0)  # waited too long
        assert pool.take(pool.plans[UID]) is None and not second.job_dir.exists()
        pool.plans[UID] = warm_plan
        pool.refresh(UID)
        third = pool.waiting[UID][1]
        longer = replace(warm_plan, limits=replace(warm_plan.limits, wall_seconds=warm_plan.limits.wall_seconds + 60))
        assert pool.take(longer) is third  # another time limit: applied at the hand-off, so it serves
        third.discard()
        other = replace(warm_plan, limits=replace(warm_plan.limits, memory_mb=1024))
        pool.refresh(UID)
        fourth = pool.waiting[UID][1]
        assert pool.take(other) is None and not fourth.job_dir.exists()  # another exercise's memory
    finally:
        pool.forget(UID)
    assert processes_of_uid(UID) == []


@pytest.mark.slow  # two jobs through a real worker slot
@pytest.mark.sandbox
def test_an_idle_slot_warms_its_next_sandbox_and_the_next_job_uses_it(app, data_dir, tmp_path, monkeypatch):
    import threading

    from grader.executor import ExecutorSettings, LocalExecutor

    pool = WarmPool()
    monkeypatch.setattr("grader.grading.POOL", pool)
    monkeypatch.setattr("grader.executor.WARM_POOL", pool)
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path, warm_slots=True)
    dataset = dataset_paths(data_dir, "synthetic")
    queue, results, done = [REPORTER, REPORTER], [], threading.Event()

    class Store(QueueStore):
        def claim_next_job(self, worker, lease_seconds):
            if results and not pool.waiting:  # the second job waits until a sandbox waits
                return None
            return super().claim_next_job(worker, lease_seconds)

        def record_result(self, job, result):
            results.append(result)
            if len(results) == 2:
                done.set()
            return True

    def grade_job(job, uid, on_progress, gpu):
        return grade(job.code, exercise, dataset, settings, time_limit=20, uid=uid, on_progress=on_progress)

    executor = LocalExecutor(Store(queue), grade_job, ExecutorSettings(slots=1, idle_poll_seconds=0.1))
    executor.start()
    try:
        assert done.wait(240), results
    finally:
        executor.stop(timeout=60)
    assert all(facts(result.log)["tensorflow_loaded"] for result in results)
    assert pool.started >= 1, "the slot started the second job's sandbox before the job was claimed"
    assert pool.waiting == {} and pool.plans == {}, "a stopped slot leaves no warm sandbox behind"


@pytest.mark.slow  # two jobs back to back through a real worker slot
@pytest.mark.sandbox
def test_a_busy_slot_warms_the_next_sandbox_under_its_other_uid_while_a_job_runs(app, data_dir, tmp_path, monkeypatch):
    import threading

    from grader.executor import ExecutorSettings, LocalExecutor

    pool = WarmPool()
    monkeypatch.setattr("grader.grading.POOL", pool)
    monkeypatch.setattr("grader.executor.WARM_POOL", pool)
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path, warm_slots=True)
    dataset = dataset_paths(data_dir, "synthetic")
    queue, results, waiting_during, done = [REPORTER, REPORTER, REPORTER], [], [], threading.Event()

    class Store(QueueStore):  # a backlog: the next job is there as soon as the slot asks
        def record_result(self, job, result):
            waiting_during.append(set(pool.waiting))  # which uids had a sandbox waiting when the job ended
            results.append(result)
            if len(results) == 3:
                done.set()
            return True

    def grade_job(job, uid, on_progress, gpu):
        return grade(job.code, exercise, dataset, settings, time_limit=30, uid=uid, on_progress=on_progress)

    executor = LocalExecutor(Store(queue), grade_job, ExecutorSettings(slots=1, idle_poll_seconds=0.1, warm_slots=True))
    executor.start()
    try:
        assert done.wait(300), results
    finally:
        executor.stop(timeout=60)
    uids = [facts(result.log)["uid"] for result in results]
    assert uids[0] != uids[1] and uids[0] == uids[2], f"the slot's jobs take its two uids in turn: {uids}"
    for ran_as, waiting in zip(uids, waiting_during, strict=True):
        other = uids[1] if ran_as == uids[0] else uids[0]
        assert other in waiting and ran_as not in waiting, f"job as {ran_as}: the next sandbox waits as {other}"
    assert pool.waiting == {} and pool.plans == {}, "a stopped slot leaves no warm sandbox behind"
    assert processes_of_uid(uids[0]) == [] and processes_of_uid(uids[1]) == []


@pytest.mark.slow  # a real worker slot imports TensorFlow in its first sandbox
@pytest.mark.sandbox
def test_a_new_idle_slot_warms_its_first_sandbox_before_any_job(app, data_dir, tmp_path, monkeypatch):
    from grader.executor import ExecutorSettings, LocalExecutor
    from grader.grading import plan_warm_slot

    pool = WarmPool()
    monkeypatch.setattr("grader.grading.POOL", pool)
    monkeypatch.setattr("grader.executor.WARM_POOL", pool)
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path, warm_slots=True)
    dataset = dataset_paths(data_dir, "synthetic")

    class NoJobs:
        def claim_next_job(self, worker, lease_seconds):
            return None

        def report_slot(self, *args): ...

    def plan(uid, gpu):
        plan_warm_slot(exercise, dataset, settings, uid, gpu)

    executor = LocalExecutor(
        NoJobs(), None, ExecutorSettings(slots=1, idle_poll_seconds=0.1, warm_slots=True), plan_warm=plan
    )
    executor.start()
    try:
        deadline = time.monotonic() + 60
        while not pool.waiting and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pool.waiting) == 1, "the idle slot started its first sandbox without a job"
        (uid,) = pool.waiting
        assert processes_of_uid(uid), "it waits as the slot's uid"
    finally:
        executor.stop(timeout=60)
    assert pool.waiting == {} and processes_of_uid(uid) == []
    missing = dataset_paths(tmp_path / "no-data-here", "synthetic")
    assert plan_warm_slot(exercise, missing, settings, UID) is False  # no data set yet: nothing planned


@pytest.mark.sandbox
def test_a_sandbox_that_cannot_start_is_retried_after_a_pause_not_every_second(plan, tmp_path, monkeypatch):
    _exercise, _settings, warm_plan = plan
    pool = WarmPool()
    broken = replace(warm_plan, data_dir=tmp_path / "gone")  # bwrap cannot bind it: the sandbox ends at once
    pool.plans[UID] = broken
    try:
        pool.refresh(UID)
        deadline = time.monotonic() + 30
        while pool.waiting[UID][1].alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.refresh(UID) is False and UID in pool.failed_at  # ended by itself: noted, not restarted
        started = pool.started
        assert pool.refresh(UID) is False and pool.started == started, "no new start within RETRY_SECONDS"
        pool.failed_at[UID] -= 3600
        pool.plans[UID] = warm_plan
        assert pool.refresh(UID) and UID not in pool.failed_at  # after the pause it tries again
    finally:
        pool.forget(UID)
    assert processes_of_uid(UID) == []
