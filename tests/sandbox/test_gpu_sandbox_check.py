"""`workshop sandbox check` on GPUs: a probe job on each GPU must see exactly its own.

Fake device nodes (plain files) stand in for /dev/nvidia*, and a stand-in CUDA driver library, compiled here,
counts the /dev/nvidiaN nodes the job can open, as the real driver does through its nodes.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest
from sandbox_jobs import fake_devices, stub_nvidia_smi

from grader.sandbox.check import CheckRow, judge_gpu, probe_gpu, run_gpu_checks
from grader.sandbox.gpus import Gpu

pytestmark = [pytest.mark.sandbox]

FAKE_LIBCUDA = r"""
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int cuInit(unsigned int flags) { return 0; }
int cuDeviceGetCount(int *count) {
    DIR *dir = opendir("/dev");
    struct dirent *entry;
    char path[300];
    int found = 0;
    if (!dir) return 999;
    while ((entry = readdir(dir))) {
        if (strncmp(entry->d_name, "nvidia", 6) || !isdigit((unsigned char)entry->d_name[6])) continue;
        snprintf(path, sizeof path, "/dev/%s", entry->d_name);
        int fd = open(path, O_RDWR);
        if (fd >= 0) { found++; close(fd); }
    }
    closedir(dir);
    *count = found;
    return 0;
}
"""


def h200(index: int) -> Gpu:
    return Gpu(index, "NVIDIA H200", 143771, "580.159.03", index)


@pytest.fixture
def libcuda(tmp_path) -> os.PathLike:
    source = tmp_path / "libcuda.c"
    source.write_text(FAKE_LIBCUDA)
    library = tmp_path / "libcuda.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


@pytest.fixture
def two_gpus(tmp_path, monkeypatch) -> dict:
    """Options that point the bwrap backend at fake nodes of GPUs 0 and 1, writable by anyone as real ones are."""
    stub_nvidia_smi(tmp_path, monkeypatch, "")  # a real GPU's compute apps must not hold these jobs back
    dev = fake_devices(tmp_path, ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-modeset"])
    for node in dev.iterdir():
        node.chmod(0o666)
    return {"dev_dir": dev, "gpu_release_seconds": 0.2}


def test_each_gpus_job_sees_and_counts_only_its_own(two_gpus, libcuda, tmp_path):
    rows = run_gpu_checks("bwrap", [h200(0), h200(1)], uid=61052, work_dir=tmp_path, options=two_gpus, libcuda=libcuda)
    table = [(row.name, row.ok, row.detail) for row in rows]
    assert all(row.ok for row in rows), table
    assert [row.name for row in rows] == [
        "GPU 0",
        "GPU 0: a job sees only its own",
        "GPU 0: the CUDA driver counts one device",
        "GPU 1",
        "GPU 1: a job sees only its own",
        "GPU 1: the CUDA driver counts one device",
    ]
    assert rows[0].detail == "NVIDIA H200, 140 GiB, driver 580.159.03, /dev/nvidia0"
    assert rows[4].detail == "GPU nodes ['nvidia1'], opened ['nvidia1'], CUDA_VISIBLE_DEVICES=0"
    assert rows[5].detail == "cuInit 0, cuDeviceGetCount 0: 1"


def test_a_sandbox_that_binds_another_gpu_fails_both_rows(two_gpus, libcuda, tmp_path, monkeypatch):
    """The check is no rubber stamp: a bwrap command line that binds GPU 1's node too is caught twice."""
    monkeypatch.setattr("grader.sandbox.bwrap.gpu_device_nodes", lambda gpu, dev_dir: ["nvidia0", "nvidia1"])
    rows = run_gpu_checks("bwrap", [h200(0)], uid=61052, work_dir=tmp_path, options=two_gpus, libcuda=libcuda)
    assert [row.ok for row in rows] == [True, False, False]
    assert "GPU nodes ['nvidia0', 'nvidia1']" in rows[1].detail and rows[2].detail.endswith(": 2")


def test_a_driver_library_that_cannot_load_inside_fails_the_driver_row(two_gpus, tmp_path):
    broken = tmp_path / "not-a-library"
    broken.write_text("")
    rows = run_gpu_checks("bwrap", [h200(1)], uid=61052, work_dir=tmp_path, options=two_gpus, libcuda=broken)
    assert [row.ok for row in rows] == [True, True, False]
    assert "the driver library cannot be loaded inside" in rows[2].detail


def test_a_gpu_without_its_node_is_one_failing_row(two_gpus, tmp_path):
    rows = run_gpu_checks("bwrap", [h200(3)], uid=61052, work_dir=tmp_path, options=two_gpus)
    assert [row.ok for row in rows] == [True, False] and "GPU 3 has no device node" in rows[1].detail


def test_the_gpu_judge_is_no_rubber_stamp(two_gpus, libcuda, tmp_path):
    facts, result = probe_gpu("bwrap", 0, uid=61052, work_dir=tmp_path, options=two_gpus, libcuda=libcuda)
    assert all(row.ok for row in judge_gpu(h200(0), facts, result))
    doctored = [
        {"nodes": [*facts["nodes"], "nvidia1"]},
        {"opened": []},
        {"visible": ""},
        {"cuInit": 100},
        {"cuDeviceGetCount": [0, 2]},
    ]
    for change in doctored:
        assert not all(row.ok for row in judge_gpu(h200(0), {**facts, **change}, result)), change
    nothing = dataclasses.replace(result, exit_code=1, log="Traceback ...")
    assert [row.ok for row in judge_gpu(h200(0), {}, nothing)] == [False]
    assert "CUDA_ERROR_NO_DEVICE" in judge_gpu(h200(0), {**facts, "cuInit": 100}, result)[1].detail


def test_cli_sandbox_check_says_there_is_no_gpu(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")  # bwrap and setpriv, but no nvidia-smi
    result = runner.invoke(args=["sandbox", "check"])
    assert result.exit_code == 0, result.output
    assert "none (nvidia-smi is not installed): jobs run on the CPU" in result.output


def test_cli_sandbox_check_probes_each_gpu_and_fails_on_a_failing_gpu_row(runner, tmp_path, monkeypatch):
    stub_nvidia_smi(tmp_path, monkeypatch, "printf '0, NVIDIA H200, 143771, 580.159.03, 0\\n'")
    probed = []

    def fake_checks(sandbox, gpus, **options):
        probed.append([gpu.index for gpu in gpus])
        return [CheckRow("GPU 0: a job sees only its own", False, "GPU nodes ['nvidia0', 'nvidia1']")]

    monkeypatch.setattr("grader.sandbox.check.run_gpu_checks", fake_checks)
    result = runner.invoke(args=["sandbox", "check"])
    assert probed == [[0]]
    assert result.exit_code == 1 and "GPU 0: a job sees only its own" in result.output
    assert "A GPU check fails" in result.output
