"""Per-job control groups: memory, process-count and CPU limits, OOM detection, kill everything (v2 or v1)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.host import pid_alive
from grader.sandbox.limits import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "workshop"
CPU_PERIOD_US = 100_000
# half the default weight: under contention the web server and the worker get the CPU before jobs do
JOB_CPU_SHARES, JOB_CPU_WEIGHT = 512, 50


class CgroupUnavailable(Exception):
    """The job's cgroup cannot be made on this host; the message says why. Such a job must not run."""


def cgroup_version(root: Path = CGROUP_ROOT) -> int | None:
    """2 for the unified hierarchy, 1 for the legacy one, None where neither is writable."""
    if (root / "cgroup.controllers").exists():
        return 2 if os.access(root, os.W_OK) else None
    if (root / "memory").is_dir() and os.access(root / "memory", os.W_OK):
        return 1
    return None


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _cpu_quota_us(limits: Limits) -> int | None:
    return int(limits.cpus * CPU_PERIOD_US) if limits.cpus else None


@dataclass
class JobCgroup:
    """The cgroup folders of one job: one per controller on v1, one on v2."""

    version: int
    folders: dict[str, Path]

    @classmethod
    def create(cls, name: str, limits: Limits, root: Path = CGROUP_ROOT) -> JobCgroup | None:
        """The job's cgroup with its limits set, or None where it cannot be made (see ``make`` for why)."""
        try:
            return cls.make(name, limits, root)
        except CgroupUnavailable:
            return None

    @classmethod
    def make(cls, name: str, limits: Limits, root: Path = CGROUP_ROOT) -> JobCgroup:
        """The job's cgroup with its limits set; raises CgroupUnavailable (nothing left behind) saying why not."""
        version = cgroup_version(root)
        if version is None:
            raise CgroupUnavailable(f"no writable cgroup hierarchy (v2 or v1 with a memory controller) at {root}")
        folders: dict[str, Path] = {}
        try:
            if version == 2:
                return cls._create_v2(name, limits, root, folders)
            return cls._create_v1(name, limits, root, folders)
        except OSError as error:
            cls(version, folders).cleanup()  # the folders made so far, so a half-made cgroup does not stay
            raise CgroupUnavailable(f"cannot set up the job's cgroup under {root}: {error}") from None

    @classmethod
    def _create_v1(cls, name: str, limits: Limits, root: Path, folders: dict[str, Path]) -> JobCgroup:
        optional = [c for c in ("cpu", "freezer") if (root / c).is_dir() and os.access(root / c, os.W_OK)]
        for controller in ("memory", "pids", *optional):
            folder = root / controller / PARENT / name
            folder.mkdir(parents=True, exist_ok=True)
            folders[controller] = folder
        memory = str(limits.memory_mb * 1024 * 1024)
        _write(folders["memory"] / "memory.limit_in_bytes", memory)
        swap_file = folders["memory"] / "memory.memsw.limit_in_bytes"
        if swap_file.exists():
            _write(swap_file, memory)
        _write(folders["pids"] / "pids.max", str(limits.max_processes))
        if "cpu" in folders:
            _write(folders["cpu"] / "cpu.shares", str(JOB_CPU_SHARES))
            if (quota := _cpu_quota_us(limits)) is not None:
                _write(folders["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(folders["cpu"] / "cpu.cfs_quota_us", str(quota))
        return cls(1, folders)

    @classmethod
    def _create_v2(cls, name: str, limits: Limits, root: Path, folders: dict[str, Path]) -> JobCgroup:
        parent = root / PARENT
        parent.mkdir(exist_ok=True)
        available = set((root / "cgroup.controllers").read_text().split())
        wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in available)
        for folder in (root, parent):
            _write(folder / "cgroup.subtree_control", wanted)
        folder = parent / name
        folder.mkdir(exist_ok=True)
        folders["unified"] = folder
        _write(folder / "memory.max", str(limits.memory_mb * 1024 * 1024))
        _write(folder / "memory.swap.max", "0")
        _write(folder / "pids.max", str(limits.max_processes))
        if (folder / "cpu.weight").exists():
            _write(folder / "cpu.weight", str(JOB_CPU_WEIGHT))
            quota = _cpu_quota_us(limits)
            _write(folder / "cpu.max", f"{quota if quota is not None else 'max'} {CPU_PERIOD_US}")
        return cls(2, {"unified": folder})

    @staticmethod
    def remove_stale(root: Path = CGROUP_ROOT) -> list[Path]:
        """Remove empty job cgroups whose worker died before cleaning up (named ``job-UID-PID-N``)."""
        removed = []
        for folder in root.glob(f"*/{PARENT}/job-*") if cgroup_version(root) == 1 else root.glob(f"{PARENT}/job-*"):
            parts = folder.name.split("-")
            if len(parts) != 4 or not parts[2].isdigit() or pid_alive(int(parts[2])):
                continue
            try:
                folder.rmdir()  # fails while a process is still inside: then it is not stale
                removed.append(folder)
            except OSError:
                continue
        return removed

    def enter(self) -> None:
        """Move the calling process into the job's cgroups (called in the child before exec)."""
        pid = str(os.getpid())
        for folder in self.folders.values():
            _write(folder / "cgroup.procs", pid)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders.values():
            try:
                found |= {int(line) for line in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                continue
        return found

    def describe(self) -> dict:
        """The limits the kernel actually holds for this job (read back, for the self-check)."""
        if self.version == 2:
            folder = self.folders["unified"]
            files = {"memory": folder / "memory.max", "pids": folder / "pids.max", "cpu": folder / "cpu.max"}
        else:
            files = {
                "memory": self.folders["memory"] / "memory.limit_in_bytes",
                "pids": self.folders["pids"] / "pids.max",
            }
            if "cpu" in self.folders:
                files["cpu"] = self.folders["cpu"] / "cpu.shares"
                files["cpu_quota_us"] = self.folders["cpu"] / "cpu.cfs_quota_us"
        facts: dict = {"version": self.version, "controllers": sorted(self.folders)}
        for key, path in files.items():
            try:
                facts[key] = path.read_text().strip()
            except OSError:
                facts[key] = None
        return facts

    def kill_all(self) -> None:
        """SIGKILL every process still in the job's cgroups (frozen first where possible, so none can fork)."""
        if self.version == 2 and (self.folders["unified"] / "cgroup.kill").exists():
            _write(self.folders["unified"] / "cgroup.kill", "1")
        for _attempt in range(50):
            frozen = self._set_freezer("FROZEN")  # a frozen task cannot fork; SIGKILLed, it dies once thawed
            remaining = self.pids()
            for pid in remaining:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if frozen:
                self._set_freezer("THAWED")
            if not remaining:
                return
            time.sleep(0.02)

    def _set_freezer(self, state: str) -> bool:
        folder = self.folders.get("freezer")
        if folder is None:
            return False
        try:
            _write(folder / "freezer.state", state)
            return True
        except OSError:
            return False

    def out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer acted on this job."""
        if self.version == 2:
            events = self._read_keys(self.folders["unified"] / "memory.events")
            return events.get("oom_kill", 0) > 0
        control = self._read_keys(self.folders["memory"] / "memory.oom_control")
        if "oom_kill" in control:
            return control["oom_kill"] > 0
        return self._read_int(self.folders["memory"] / "memory.failcnt") > 0 and control.get("under_oom", 0) > 0

    @staticmethod
    def _read_keys(path: Path) -> dict[str, int]:
        try:
            pairs = (line.split() for line in path.read_text().splitlines())
            return {key: int(value) for key, value in pairs}
        except (OSError, ValueError):
            return {}

    @staticmethod
    def _read_int(path: Path) -> int:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return 0

    def cleanup(self) -> list[str]:
        """Remove the job's cgroups; returns notes about anything that had to be swept."""
        notes = []
        if self.pids():
            notes.append("processes outlived the job and were killed")
            self.kill_all()
        for folder in self.folders.values():
            for _attempt in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        return notes
