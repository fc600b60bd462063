"""Running one contained command: a new session, rlimits, a bounded log, and killing the whole tree at the end."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable

from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.limits import Limits, SandboxResult, job_cpus


class LogCapture:
    """Keeps the first and the last bytes of a stream, whatever its length (bounded memory)."""

    def __init__(self, head_bytes: int, tail_bytes: int):
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0
        self.head_limit, self.tail_limit = head_bytes, tail_bytes
        self.lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = self.head_limit - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size - len(self.tail[0]) >= self.tail_limit:
                    self.tail_size -= len(self.tail.popleft())

    def text(self) -> str:
        with self.lock:
            tail = b"".join(self.tail)[-self.tail_limit :]
            skipped = self.total - len(self.head) - len(tail)
            middle = f"\n[... {skipped} bytes of output skipped ...]\n".encode() if skipped > 0 else b""
            return (bytes(self.head) + middle + tail).decode("utf-8", errors="replace")


def _drain(stream, capture: LogCapture) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        capture.feed(chunk)
    stream.close()


def _set_rlimits(limits: Limits) -> None:
    """Second layer under cgroups: inherited by bwrap, setpriv and the job; hard limits cannot be raised."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
    file_bytes = limits.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    # generous (TensorFlow maps far more than it touches), so it only catches a runaway when cgroups are missing
    data_bytes = 2 * limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (data_bytes, data_bytes))
    cpu_seconds = int(limits.wall_seconds * job_cpus(limits)) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def _child_setup(limits: Limits, cgroup: JobCgroup | None, rlimits: bool) -> Callable[[], None]:
    """What the child does between fork and exec: enter the job's cgroup (before it can fork), set rlimits."""

    def prepare_child() -> None:
        if cgroup is not None:
            cgroup.enter()
        if rlimits:
            _set_rlimits(limits)

    return prepare_child


def _start(argv: list[str], env: dict[str, str], pass_fds: tuple[int, ...], prepare: Callable[[], None]):
    """Start ``argv`` in a new session (its own process group), output to one pipe, nothing else inherited."""
    return subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Python code between fork and exec is not async-signal-safe: this one only opens and writes
        # cgroup.procs and calls setrlimit, taking no lock another thread could hold, and nothing else can
        # put a child into a cgroup before its first instruction (posix_spawn has no such option)
        preexec_fn=prepare,  # noqa: PLW1509
        close_fds=True,
        pass_fds=pass_fds,
    )


def _wait_for_exit(
    process: subprocess.Popen,
    deadline: float,
    capture: LogCapture,
    on_poll: Callable[[str], None] | None,
    poll_seconds: float,
) -> bool:
    """Wait for ``process`` until ``deadline``, handing ``on_poll`` the log between waits; True when time ran out."""
    while process.poll() is None:
        if time.monotonic() >= deadline:
            return True
        try:
            process.wait(timeout=min(poll_seconds, max(0.05, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if on_poll is not None:
                on_poll(capture.text())  # may raise (e.g. the job was cancelled): the caller still cleans up
    return False


def _finish_cgroup(cgroup: JobCgroup | None) -> tuple[bool, dict | None, list[str]]:
    """Out of memory or not, the limits the kernel held (read back before the folders go), and cleanup notes."""
    if cgroup is None:
        return False, None, []
    out_of_memory = cgroup.out_of_memory()
    described = cgroup.describe()
    return out_of_memory, described, cgroup.cleanup()


def run_contained(
    argv: list[str],
    env: dict[str, str],
    limits: Limits,
    cgroup: JobCgroup | None,
    on_poll: Callable[[str], None] | None = None,
    poll_seconds: float = 1.0,
    pass_fds: tuple[int, ...] = (),
    rlimits: bool = True,
) -> SandboxResult:
    """Start ``argv`` in a new session, capture its output, kill the whole tree at the wall-clock limit."""
    capture = LogCapture(limits.log_head_bytes, limits.log_tail_bytes)
    started = time.monotonic()
    process = _start(argv, env, pass_fds, _child_setup(limits, cgroup, rlimits))
    reader = threading.Thread(target=_drain, args=(process.stdout, capture), daemon=True)
    reader.start()
    try:
        timed_out = _wait_for_exit(process, started + limits.wall_seconds, capture, on_poll, poll_seconds)
    finally:
        _kill_tree(process, cgroup)
        reader.join(timeout=limits.kill_grace_seconds)
        out_of_memory, described, notes = _finish_cgroup(cgroup)
    return SandboxResult(
        exit_code=process.returncode,
        timed_out=timed_out,
        out_of_memory=out_of_memory,
        log=capture.text(),
        log_bytes=capture.total,
        seconds=time.monotonic() - started,
        notes=notes,
        containment={"cgroup": described},
    )


def _kill_tree(process: subprocess.Popen, cgroup: JobCgroup | None) -> None:
    """Kill the job's process group and, through its cgroup, anything that escaped the group."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if cgroup is not None:
        cgroup.kill_all()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
