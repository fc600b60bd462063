"""What every backend shares: the limits of a job, the job itself, its result and the backend's refusal.

A leaf module (standard library only), so cgroups, locks and every backend can import it without a cycle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

BASE_UID = 61000  # the first sandbox uid; worker slot N runs its jobs as BASE_UID + N


class SandboxUnavailable(Exception):
    """The chosen backend cannot run on this host; the message says what is missing."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job, in one place (SECURITY.md explains each)."""

    wall_seconds: float = 120
    memory_mb: int = 4096  # RAM of the job's cgroup, including what it writes to /tmp, /dev/shm and /out
    max_processes: int = 512  # processes and threads (cgroup pids.max and RLIMIT_NPROC)
    max_open_files: int = 4096
    max_file_mb: int = 512
    tmp_mb: int = 1024  # size of the private /tmp (also HOME)
    shm_mb: int = 256  # size of the private /dev/shm
    out_mb: int = 64  # size of the output folder the host reads afterwards
    max_inodes: int = 16384  # files per writable file system
    cpus: float | None = None  # CPU quota in cores; None: as many as the host has
    log_head_bytes: int = 16 * 1024
    log_tail_bytes: int = 64 * 1024
    kill_grace_seconds: float = 5


def job_cpus(limits: Limits) -> float:
    """The CPU cores a job may use: its quota, or the whole host."""
    return float(limits.cpus) if limits.cpus else float(os.cpu_count() or 1)


@dataclass(frozen=True)
class SandboxJob:
    """Folders of one job on the host, and the spec handed to the harness (paths filled in by the backend)."""

    code_dir: Path
    out_dir: Path
    data_dir: Path
    spec: dict
    limits: Limits
    uid: int = BASE_UID
    gpu: int | None = None
    weights_dir: Path | None = None  # cached Keras application weights, bound read-only when present

    @property
    def job_dir(self) -> Path:
        """The job's folder on the host: code, spec, identity files and scratch mounts live in it."""
        return self.code_dir.parent


@dataclass(frozen=True)
class SandboxResult:
    """What a backend reports about one run: how it ended, which limit stopped it, the capped log, notes.

    Frozen: a backend that adds to a result returns a changed copy (``dataclasses.replace``).
    """

    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    log: str
    log_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    containment: dict = field(default_factory=dict)  # facts about the layers that applied (for checks)
