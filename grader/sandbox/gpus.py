"""The host's NVIDIA GPUs as nvidia-smi lists them, and the choice of GPUs for worker slots (``--gpus``).

A leaf module (standard library only). A slot's GPU is nvidia-smi's index (what ``nvidia-smi -i``, Docker's
``--gpus device=N`` and the instructor's workers page use); the bwrap sandbox binds ``/dev/nvidia<index>``,
so a GPU whose device node has another number (a container given a subset of a host's GPUs) is refused here
rather than bound wrongly.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.limits import BASE_UID

QUERY = "index,name,memory.total,driver_version,minor_number"
SLOT_UIDS = range(BASE_UID, BASE_UID + 1000)  # the sandbox uids of worker slots (grader/sandbox/locks.py)


class GpuError(Exception):
    """nvidia-smi failed, or a ``--gpus`` choice this host cannot give; the message says which and why."""


@dataclass(frozen=True)
class Gpu:
    """One GPU: nvidia-smi's index, its name, memory (MiB), the driver's version and its /dev/nvidia number."""

    index: int
    name: str
    memory_mib: int | None
    driver: str
    minor: int | None = None  # /dev/nvidia<minor>; None where nvidia-smi does not say

    @property
    def device_node(self) -> str:
        return f"nvidia{self.index if self.minor is None else self.minor}"

    def summary(self) -> str:
        """Name, memory and driver, e.g. "NVIDIA H200, 140 GiB, driver 580.159.03"."""
        memory = f"{self.memory_mib / 1024:.0f} GiB" if self.memory_mib is not None else "memory unknown"
        return f"{self.name}, {memory}, driver {self.driver}"

    def describe(self) -> str:
        return f"GPU {self.index}: {self.summary()}"


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None  # "[N/A]", "[Not Supported]"


def parse_gpus(listing: str) -> list[Gpu]:
    """nvidia-smi's ``--query-gpu=QUERY --format=csv,noheader,nounits`` output, one GPU a line."""
    gpus = []
    for row in csv.reader(listing.splitlines(), skipinitialspace=True):
        if not row:
            continue
        if len(row) != 5 or _number(row[0]) is None:
            raise GpuError(f"nvidia-smi printed a line that is not a GPU: {','.join(row)[:200]!r}")
        index, name, memory, driver, minor = row
        gpus.append(Gpu(int(index), name.strip(), _number(memory), driver.strip(), _number(minor)))
    return gpus


def list_gpus(timeout: float = 30) -> list[Gpu]:
    """The GPUs nvidia-smi lists; none where it is not installed. Raises GpuError where it fails (no driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise GpuError(f"nvidia-smi did not answer: {error}") from None
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        raise GpuError(f"nvidia-smi failed (exit {done.returncode}): {said[0] if said else 'no output'}")
    return parse_gpus(done.stdout)


def _indices(choice: str) -> list[int]:
    try:
        indices = [int(part) for part in choice.split(",") if part.strip()]
    except ValueError:
        raise GpuError(f"--gpus {choice!r}: give all, none, or GPU indices such as 0,2") from None
    if not indices:
        raise GpuError(f"--gpus {choice!r}: give all, none, or GPU indices such as 0,2")
    if len(set(indices)) != len(indices):
        raise GpuError(f"--gpus {choice!r} names a GPU twice: one slot per GPU")
    return indices


def choose_gpus(choice: str | None, found: list[Gpu]) -> list[Gpu]:
    """The GPUs that get a slot each: ``None`` (the default) all found, ``all``, ``none``, or indices (``0,2``)."""
    choice = None if choice is None else choice.strip().lower()
    if choice == "none":
        return []
    if choice is None or choice == "all":
        if choice == "all" and not found:
            raise GpuError("--gpus all: nvidia-smi lists no GPU on this host (use --gpus none for CPU slots)")
        chosen = list(found)
    else:
        by_index = {gpu.index: gpu for gpu in found}
        chosen = []
        for index in _indices(choice):
            if index not in by_index:
                listed = ", ".join(str(gpu.index) for gpu in found) or "none (nvidia-smi lists no GPU)"
                raise GpuError(f"GPU {index} is not on this host: found {listed}")
            chosen.append(by_index[index])
    for gpu in chosen:
        if gpu.device_node != f"nvidia{gpu.index}":
            raise GpuError(
                f"GPU {gpu.index} ({gpu.name}) is /dev/{gpu.device_node} on this host, not /dev/nvidia{gpu.index}: "
                "nvidia-smi's numbering differs from the device nodes (a container given some of a host's GPUs?), "
                "and a job must get exactly its own GPU. Run the worker where they agree, or with --gpus none"
            )
    return chosen


def gpu_memory_cap(gpu_memory_mib: int | None, slots_per_gpu: int, exercise_mb: int | None = None) -> int | None:
    """The GPU memory (MiB) one job may use where ``slots_per_gpu`` jobs share a GPU (``--slots-per-gpu``).

    The exercise's own ``gpu_memory_mb`` when it sets one (never more than the GPU's share), else the GPU's
    memory divided by the slots on it; None (no cap: the whole GPU, as with one slot per GPU) when the GPU
    is not shared and the exercise sets nothing, or when the GPU's memory is unknown.
    """
    share = gpu_memory_mib // slots_per_gpu if gpu_memory_mib and slots_per_gpu > 1 else None
    if exercise_mb:
        return min(exercise_mb, share) if share else exercise_mb
    return share


def packed(indices: list[int], slots_per_gpu: int) -> tuple[int, ...]:
    """Each GPU index ``slots_per_gpu`` times: the slots of ``--gpus`` with ``--slots-per-gpu``."""
    if slots_per_gpu < 1:
        raise GpuError(f"--slots-per-gpu {slots_per_gpu}: give 1 (the default) or more")
    return tuple(index for index in indices for _ in range(slots_per_gpu))


def other_than_slots(pids: list[int], uid: int, proc: Path = Path("/proc"), slot_uids: range = SLOT_UIDS) -> list[int]:
    """Of the processes holding a shared GPU, those that count against a job of ``uid`` starting on it:
    everything except the jobs of the other slots (their uids), which hold their own share."""
    return [pid for pid, uids in _owners(pids, proc) if not uids or any(o == uid or o not in slot_uids for o in uids)]


def other_than_uid(pids: list[int], ignored: int, proc: Path = Path("/proc")) -> list[int]:
    """Of the processes holding a GPU, all but those of uid ``ignored`` (the slot's other uid, whose waiting warm
    sandbox has only imported TensorFlow and is not a job: it touches the GPU only once its own job runs)."""
    return [pid for pid, uids in _owners(pids, proc) if not uids or any(owner != ignored for owner in uids)]


def _owners(pids: list[int], proc: Path) -> list[tuple[int, set[int]]]:
    """(pid, its real, effective, saved and file-system uids) for each process still there."""
    owners = []
    for pid in pids:
        try:
            status = (proc / str(pid) / "status").read_text()
        except OSError:
            continue  # gone meanwhile
        uids = {int(part) for line in status.splitlines() if line.startswith("Uid:") for part in line.split()[1:]}
        owners.append((pid, uids))
    return owners
