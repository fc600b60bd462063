"""Processes and GPUs on the host: who runs as a job's uid, killing them all, and who holds a GPU."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from grader.sandbox.limits import SandboxUnavailable

MIN_JOB_UID = 1000  # the per-uid sweep refuses anything below: system and human accounts
GPU_CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (whoever owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _status_fields(status_file: Path) -> dict[str, str]:
    """The ``Key: value`` lines of a /proc/PID/status file."""
    fields = {}
    for line in status_file.read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def processes_of_uid(uid: int, proc: Path = Path("/proc")) -> list[int]:
    """Live (non-zombie) processes whose real, effective, saved or file-system uid is ``uid`` (like pgrep -u)."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _status_fields(entry / "status")
        except (OSError, ValueError):
            continue  # gone meanwhile
        uids = {int(value) for value in fields.get("Uid", "").split()}
        if uid in uids and not fields.get("State", "").startswith(("Z", "X")):
            found.append(int(entry.name))
    return sorted(found)


def sweep_uid(uid: int, proc: Path = Path("/proc"), rounds: int = 100) -> list[int]:
    """SIGKILL every process of the job's uid, repeating until none is left; returns the pids found."""
    if uid < MIN_JOB_UID:
        raise ValueError(f"refusing to sweep the processes of uid {uid}: not a sandbox uid")
    seen: set[int] = set()
    for _round in range(rounds):
        remaining = processes_of_uid(uid, proc)
        if not remaining:
            break
        seen.update(remaining)
        for pid in remaining:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return sorted(seen)


def gpu_device_nodes(gpu: int, dev_dir: Path = Path("/dev")) -> list[str]:
    """Names under ``dev_dir`` a job on ``gpu`` needs: its own /dev/nvidiaN and the control nodes present."""
    own = f"nvidia{gpu}"
    if not (dev_dir / own).exists():
        raise SandboxUnavailable(f"GPU {gpu} has no device node {dev_dir / own}")
    return [own, *(name for name in GPU_CONTROL_NODES if (dev_dir / name).exists())]


def gpu_holders(gpu: int, proc: Path = Path("/proc"), dev_dir: Path = Path("/dev")) -> list[int]:
    """Processes that hold ``/dev/nvidiaN`` open (scanning /proc/*/fd), plus nvidia-smi's compute apps."""
    device = str(dev_dir / f"nvidia{gpu}")
    holders: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if device in links:
            holders.add(int(entry.name))
    return sorted(holders | _nvidia_smi_apps(gpu))


def _nvidia_smi_apps(gpu: int) -> set[int]:
    if shutil.which("nvidia-smi") is None:
        return set()
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader", "-i", str(gpu)],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {int(line) for line in listing.split() if line.strip().isdigit()}


def wait_for_gpu_release(
    gpu: int, seconds: float = 15, proc: Path = Path("/proc"), dev_dir: Path = Path("/dev")
) -> list[int]:
    """Wait until nothing holds the GPU; returns the holders left when time ran out (empty: free)."""
    deadline = time.monotonic() + seconds
    while (holders := gpu_holders(gpu, proc, dev_dir)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return holders
