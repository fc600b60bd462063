"""Job cgroups: they hold the limits, a dead worker's are removed, and a job without its cgroup does not run.

A job without its cgroup: bwrap refuses it, grading reports an infrastructure failure.

The cgroup root is a constructor argument of the bwrap backend. Pointing it at a folder that is no cgroup file
system makes the creation fail for real on this host: either no hierarchy is found at all, or the folders
look like a v1 hierarchy (``memory/``, ``pids/``) but the kernel's control files are missing, so setting the
limits fails half-way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sandbox_jobs import dead_pid, prepared_job

from grader.data import dataset_paths
from grader.grading import GradingSettings, grade
from grader.sandbox import BwrapSandbox, Limits, processes_of_uid
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.check import format_table, run_sandbox_check
from server.catalog import catalog

pytestmark = [pytest.mark.sandbox]

UID = 61081
MARKER = "SUBMISSION-CODE-RAN"
SUBMISSION = f"""
print("{MARKER}", flush=True)

def train(data):
    print("{MARKER} in train", flush=True)
    raise SystemExit("not reached")
"""


def _unusable_root(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / f"cgroups-{kind}"
    root.mkdir()
    if kind == "half-made":  # looks like cgroup v1 (writable memory and pids folders) but holds no control files
        (root / "memory").mkdir()
        (root / "pids").mkdir()
    return root


def _job_folders(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("job-*") if path.is_dir())


@pytest.mark.parametrize("kind", ["missing", "half-made"])
def test_a_job_without_its_cgroup_is_an_infrastructure_failure_and_never_runs(app, data_dir, tmp_path, kind):
    root = _unusable_root(tmp_path, kind)
    exercise = catalog(app)["cnn-from-scratch"]
    result = grade(
        SUBMISSION,
        exercise,
        dataset_paths(data_dir, "synthetic"),
        GradingSettings(sandbox="bwrap", sandbox_options={"cgroup_root": root}, work_dir=tmp_path / "work"),
        uid=UID,
        time_limit=20,
    )
    assert result.status == "failed" and result.error_kind == "infrastructure", (result.status, result.message)
    assert "cgroup" in result.message and "rlimits" not in result.log
    assert MARKER not in result.log and result.log == "", "the participant's code ran without its cgroup"
    assert result.public_score is None and result.history == []
    assert _job_folders(root) == [], "a half-made job cgroup was left behind"
    assert processes_of_uid(UID) == []
    assert not any(path.is_mount() for path in (tmp_path / "work").rglob("*"))


def test_a_half_made_cgroup_is_removed_and_explained(tmp_path):
    root = _unusable_root(tmp_path, "half-made")
    assert JobCgroup.create("job-61081-1-1", Limits(), root=root) is None
    with pytest.raises(Exception, match=r"cannot set up the job's cgroup under .*memory\.limit_in_bytes"):
        JobCgroup.make("job-61081-1-2", Limits(), root=root)
    assert _job_folders(root) == []


@pytest.mark.parametrize(("kind", "says"), [("missing", "no writable cgroup hierarchy"), ("half-made", "no cgroup")])
def test_the_self_check_reports_the_missing_cgroup(tmp_path, kind, says):
    rows = run_sandbox_check("bwrap", uid=UID, options={"cgroup_root": _unusable_root(tmp_path, kind)})
    table = format_table(rows)
    assert not all(row.ok for row in rows), table
    failed = [row for row in rows if not row.ok]
    assert any(says in row.detail and "cgroup" in row.detail for row in failed), table
    assert "unexpected keyword" not in table, table


# --- limits held, stale cgroups removed -------------------------------------------------------------------------------


def test_cgroup_holds_the_cpu_quota():
    cgroup = JobCgroup.create(f"test-{os.getpid()}", Limits(cpus=0.5, memory_mb=300, max_processes=20))
    assert cgroup is not None, "this host has writable cgroups; the sandbox needs them"
    try:
        facts = cgroup.describe()
        assert facts["memory"] in (str(300 * 2**20), "314572800") and facts["pids"] == "20"
        assert facts.get("cpu_quota_us", "50000 100000").split()[0] == "50000"
    finally:
        cgroup.cleanup()


def test_a_cpu_quota_slows_a_spinning_job(tmp_path, data_dir):
    program = tmp_path / "spin.py"
    program.write_text(
        "import os, threading, time\n"
        "def spin():\n"
        "    end = time.monotonic() + 2\n"
        "    while time.monotonic() < end: pass\n"
        "threads = [threading.Thread(target=spin) for _ in range(2)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print('CPU', sum(os.times()[:2]))\n"
    )
    program.chmod(0o644)
    job = prepared_job(tmp_path, data_dir, limits=Limits(wall_seconds=30, cpus=0.5))
    sandbox = BwrapSandbox()
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    cpu = float(next(line for line in result.log.splitlines() if line.startswith("CPU ")).split()[1])
    assert cpu < 1.5, f"two threads spinning 2 s under half a core used {cpu} CPU seconds"


def test_cgroups_of_a_dead_worker_are_removed():
    name = f"job-61111-{dead_pid()}-1"
    stale = JobCgroup.create(name, Limits())
    assert stale is not None
    removed = JobCgroup.remove_stale()
    assert {folder.name for folder in removed} == {name}
    assert not any(folder.exists() for folder in stale.folders.values())
