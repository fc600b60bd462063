"""The host's view of jobs: which processes hold a GPU, and sweeping every process of a sandbox uid."""

from __future__ import annotations

import subprocess
import time

import pytest
from sandbox_jobs import fake_proc, stub_nvidia_smi

from grader.sandbox import gpu_holders, processes_of_uid, sweep_uid

pytestmark = [pytest.mark.sandbox]


def test_gpu_holders_are_found_through_proc_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here, even on a host that has one
    proc = fake_proc(tmp_path, {101: "/dev/nvidia1", 102: "/dev/nvidia10", 103: "/dev/null", 104: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101, 104]
    assert gpu_holders(2, proc=proc) == []


def test_gpu_holders_add_the_compute_apps_nvidia_smi_lists(tmp_path, monkeypatch):
    log = stub_nvidia_smi(tmp_path, monkeypatch, 'case "$4" in 1) printf "555\\n104\\n" ;; esac')
    proc = fake_proc(tmp_path, {101: "/dev/nvidia1", 104: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101, 104, 555]
    assert gpu_holders(2, proc=proc) == []
    assert log.read_text().splitlines() == [
        "--query-compute-apps=pid --format=csv,noheader -i 1",
        "--query-compute-apps=pid --format=csv,noheader -i 2",
    ]


def test_gpu_holders_ignore_a_failing_nvidia_smi(tmp_path, monkeypatch):
    log = stub_nvidia_smi(tmp_path, monkeypatch, 'echo "555"; echo "NVIDIA-SMI has failed" >&2; exit 9')
    proc = fake_proc(tmp_path, {101: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101]
    assert log.read_text() != ""


def test_sweep_kills_every_process_of_the_uid(tmp_path):
    sleepers = [
        subprocess.Popen(["setpriv", "--reuid=61099", "--regid=61099", "--clear-groups", "setsid", "sleep", "300"])
        for _ in range(3)
    ]
    deadline = time.monotonic() + 5
    while len(processes_of_uid(61099)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sweep_uid(61099)) >= 3
    assert processes_of_uid(61099) == []
    for sleeper in sleepers:
        sleeper.wait(timeout=5)
    with pytest.raises(ValueError, match="not a sandbox uid"):
        sweep_uid(0)
