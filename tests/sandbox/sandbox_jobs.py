"""Helpers shared by the sandbox tests: jobs, fake device nodes and /proc, a stub nvidia-smi, a dead pid."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from grader.sandbox import Limits, SandboxJob


def make_job(tmp_path, **changes) -> SandboxJob:
    """A job whose folders need not exist: enough to build a backend's command line."""
    fields = {
        "code_dir": tmp_path / "job" / "code",
        "out_dir": tmp_path / "job" / "out",
        "data_dir": tmp_path / "data" / "public",
        "spec": {},
        "limits": Limits(),
        "uid": 61005,
    }
    return SandboxJob(**(fields | changes))


def arg_pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    """The two arguments after each ``flag`` (``--bind SRC DEST``, ``--setenv NAME VALUE``)."""
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == flag]


def prepared_job(tmp_path: Path, data_dir: Path, limits: Limits | None = None, **changes) -> SandboxJob:
    """A job folder laid out like grading's, for running a small program straight through a backend."""
    root = tmp_path / "jobs"
    root.mkdir(mode=0o711, exist_ok=True)
    job_dir = root / f"job-{len(list(root.iterdir()))}"
    (job_dir / "code").mkdir(parents=True, mode=0o755)
    os.chmod(job_dir, 0o711)  # noqa: S103 - as grading makes it: traversable for the binds
    (job_dir / "out").mkdir(mode=0o700)
    os.chown(job_dir / "out", 61050, 61050)
    fields = {"spec": {}, "limits": limits or Limits(wall_seconds=30), "uid": 61050}
    return SandboxJob(job_dir / "code", job_dir / "out", data_dir / "synthetic" / "public", **(fields | changes))


def fake_devices(tmp_path: Path, names: list[str]) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).write_text("")
    return dev


def fake_proc(tmp_path: Path, links: dict[int, str]) -> Path:
    proc = tmp_path / "proc"
    for pid, target in links.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        os.symlink(target, proc / str(pid) / "fd" / "3")
        (proc / str(pid) / "status").write_text("Name:\tx\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\n")
    (proc / "self").mkdir(parents=True, exist_ok=True)
    return proc


def stub_nvidia_smi(tmp_path: Path, monkeypatch, script: str) -> Path:
    """Put a fake ``nvidia-smi`` (a shell ``script`` that logs its arguments) first on PATH; returns the log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "nvidia-smi.log"
    stub = bin_dir / "nvidia-smi"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{script}\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def dead_pid() -> int:
    """The pid of a process that has exited (a worker that is gone)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
