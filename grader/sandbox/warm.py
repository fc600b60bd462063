"""A warm sandbox: the bwrap sandbox of the NEXT job, started before the job exists, waiting for its files.

The sandbox is built exactly as a cold one (``BwrapSandbox``: the slot's uid, its own cgroup with the
exercise's limits, rlimits, seccomp, the same read-only binds), with two differences: its code folder and
spec file are still empty, and the harness runs as ``harness.py --warm FD SPEC``, so it imports NumPy,
TensorFlow and Keras and then blocks on the pipe FD. It holds nothing of any participant until
:meth:`WarmSandbox.run` writes the job's code and spec (as root, into the folders bound read-only: a
bind mount shows files added later) and says ``go``; the job's wall clock starts then. A warm sandbox is
used for one job, never reused; :meth:`discard` ends one that is not wanted (too old, another exercise).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from grader.sandbox.bwrap import BwrapSandbox, _sweep_note, _write_identity_files, bwrap_argv
from grader.sandbox.cgroups import JobCgroup, _write
from grader.sandbox.host import sweep_uid
from grader.sandbox.layout import HARNESS, inside_spec
from grader.sandbox.limits import Limits, SandboxJob, SandboxResult, job_cpus
from grader.sandbox.locks import SlotLock
from grader.sandbox.mounts import mount_scratch, scratch_dirs, unmount, unmount_stale_scratch
from grader.sandbox.process import LogCapture, _child_setup, _drain, _finish_cgroup, _kill_tree, _start, _wait_for_exit
from grader.sandbox.seccomp import filter_fd, memory_file

MAX_WALL_SECONDS = 7200 + 600  # the longest time limit an exercise may set, and more: a waiting sandbox's CPU rlimit


class WarmLost(Exception):
    """The warm sandbox ended before its job was handed in (killed, crashed): the job runs cold instead."""


def warm_argv(argv: list[str], go_fd: int, ready_fd: int) -> list[str]:
    """A cold bwrap command line turned warm: the harness gets ``--warm GO_FD READY_FD`` before its spec."""
    return [*argv[:-1], "--warm", str(go_fd), str(ready_fd), argv[-1]]


class WarmSandbox:
    """One started, waiting sandbox for ``job`` (its code folder empty, its spec not yet written)."""

    def __init__(self, backend: BwrapSandbox, job: SandboxJob):
        self.backend, self.job = backend, job
        self.spec_path = job.job_dir / "spec.json"
        self.started = time.monotonic()
        self.notes: list[str] = []
        self.cgroup: JobCgroup | None = None
        self.process = None
        self.go_fd = self.ready_fd = -1
        self.capture = LogCapture(job.limits.log_head_bytes, job.limits.log_tail_bytes)
        self.reader: threading.Thread | None = None
        self.done = False
        self._leftovers: list[int] = []

    @classmethod
    def start(cls, backend: BwrapSandbox, job: SandboxJob) -> WarmSandbox:
        """Start the sandbox for ``job``'s uid and limits; raises SandboxUnavailable where it cannot."""
        backend.check_available()
        warm = cls(backend, job)
        with SlotLock(uid=job.uid):
            unmount_stale_scratch()
            JobCgroup.remove_stale(backend.cgroup_root)
            warm.notes += _sweep_note(sweep_uid(job.uid, backend.proc), "before the job")
            if job.gpu is not None:
                backend._require_free_gpu(job.gpu, job.uid)
            warm.cgroup = backend._job_cgroup(job)
            try:
                warm._launch()
            except BaseException:
                warm.discard()
                raise
        return warm

    def _launch(self) -> None:
        job = self.job
        self.spec_path.write_text("", encoding="utf-8")  # written in place at the hand-off (same inode)
        os.chmod(self.spec_path, 0o644)
        etc = _write_identity_files(job.job_dir, job.uid)
        mount_scratch(job)
        seccomp, arguments = filter_fd(), -1
        read_end, self.go_fd = os.pipe()
        self.ready_fd, ready_write = os.pipe()
        try:
            argv = bwrap_argv(
                job, self.spec_path, etc, seccomp_fd=seccomp, program=HARNESS, dev_dir=self.backend.dev_dir
            )
            argv = warm_argv(argv, read_end, ready_write)
            split = argv.index("--")  # as BwrapSandbox: the options go through a memory file
            arguments = memory_file(b"".join(os.fsencode(arg) + b"\0" for arg in argv[1:split]))
            launch = [argv[0], "--args", str(arguments), *argv[split:]]
            # rlimits with room for the preloaded harness; it lowers them to the job's before the job runs
            # (the CPU time too: the sandbox may serve a job of another exercise, with a longer time limit)
            roomy = replace(
                job.limits,
                max_processes=job.limits.max_processes + 256,
                memory_mb=job.limits.memory_mb * 4,
                wall_seconds=MAX_WALL_SECONDS,
            )
            prepare = _child_setup(roomy, self.cgroup, True)
            self.process = _start(
                launch, {"PATH": "/usr/bin:/bin"}, (seccomp, arguments, read_end, ready_write), prepare
            )
        finally:
            for fd in (seccomp, arguments, read_end, ready_write):
                if fd >= 0:
                    os.close(fd)
        self.reader = threading.Thread(target=_drain, args=(self.process.stdout, _Relay(self)), daemon=True)
        self.reader.start()

    @property
    def job_dir(self) -> Path:
        return self.job.job_dir

    def age(self) -> float:
        return time.monotonic() - self.started

    def alive(self) -> bool:
        return not self.done and self.process is not None and self.process.poll() is None

    def run(self, job: SandboxJob, code: str, on_poll: Callable[[str], None] | None = None) -> SandboxResult:
        """Hand ``code`` and ``job``'s spec in, say go, and wait for the job like a cold run; used once."""
        if job.job_dir != self.job_dir or job.uid != self.job.uid:
            raise ValueError("a warm sandbox runs only the job it was started for")
        with SlotLock(uid=job.uid):
            if not self._ready(job.limits.wall_seconds):
                self.discard()
                raise WarmLost(f"the warm sandbox ended before it was ready (exit {self.process.poll()})")
            submission = job.code_dir / "submission.py"
            submission.write_text(code, encoding="utf-8")
            os.chmod(submission, 0o644)
            with open(self.spec_path, "w", encoding="utf-8") as handle:  # truncates: the bound inode stays
                handle.write(json.dumps(inside_spec(job)))
            rlimits, notes = credit_preload(self.cgroup, job.limits, job.uid)
            self.notes += notes
            self.capture = LogCapture(job.limits.log_head_bytes, job.limits.log_tail_bytes)  # the job's log only
            handed = time.monotonic()
            try:
                os.write(self.go_fd, b"go %d %d %d\n" % rlimits)
            except BrokenPipeError:
                self.discard()
                raise WarmLost("the warm sandbox closed its pipe before the job arrived") from None
            return self._wait(job, handed, on_poll)

    def _ready(self, seconds: float) -> bool:
        """Wait (at most ``seconds``) until the harness has imported its frameworks; False if it ended first."""
        if self.ready_fd >= 0:
            readable, _, _ = select.select([self.ready_fd], [], [], seconds)
            said = os.read(self.ready_fd, 16) if readable else b""
            os.close(self.ready_fd)
            self.ready_fd = -1
            if said != b"ready\n":
                return False
        return self.alive()

    def _wait(self, job: SandboxJob, handed: float, on_poll: Callable[[str], None] | None) -> SandboxResult:
        timed_out, out_of_memory, described, cleanup = False, False, None, []
        try:
            deadline = handed + job.limits.wall_seconds
            timed_out = _wait_for_exit(self.process, deadline, self.capture, on_poll, 1.0)
        finally:
            _kill_tree(self.process, self.cgroup)
            self.reader.join(timeout=job.limits.kill_grace_seconds)
            out_of_memory, described, cleanup = _finish_cgroup(self.cgroup)
            self._end(keep_output=True)
        notes = self.notes + cleanup + _sweep_note(self._leftovers, "after the job")
        if job.gpu is not None and (holders := self.backend._gpu_holders_after_wait(job.gpu, job.uid)):
            notes.append(f"GPU {job.gpu} is still held by processes {holders}; the next job waits for it")
        return SandboxResult(
            exit_code=self.process.returncode,
            timed_out=timed_out,
            out_of_memory=out_of_memory,
            log=self.capture.text(),
            log_bytes=self.capture.total,
            seconds=time.monotonic() - handed,
            notes=notes,
            containment={
                "cgroup": described,
                "seccomp": True,
                "uid": job.uid,
                "scratch_mb": {"tmp": job.limits.tmp_mb},
                "warm": True,
            },
        )

    def _end(self, keep_output: bool) -> None:
        """Close the pipe, unmount the scratch (and the output unless the host still reads it), sweep the uid."""
        self.done = True
        for fd in (self.go_fd, self.ready_fd):
            if fd >= 0:
                os.close(fd)
        self.go_fd = self.ready_fd = -1
        for name, (host, *_rest) in scratch_dirs(self.job).items():
            if name != "out" or not keep_output:
                unmount(host)
        self._leftovers = sweep_uid(self.job.uid, self.backend.proc)

    def discard(self) -> None:
        """End an unused warm sandbox: kill it, remove its cgroup, mounts and folder; nothing of it survives."""
        if self.done and not self.job_dir.exists():
            return
        with SlotLock(uid=self.job.uid):
            if self.process is not None:
                _kill_tree(self.process, self.cgroup)
            if self.cgroup is not None:
                self.cgroup.cleanup()
            self._end(keep_output=False)
        shutil.rmtree(self.job_dir, ignore_errors=True)


class _Relay:
    """Feeds the sandbox's output to the warm sandbox's current capture (a fresh one from the hand-off on)."""

    def __init__(self, warm: WarmSandbox):
        self.warm = warm

    def feed(self, chunk: bytes) -> None:
        self.warm.capture.feed(chunk)


def credit_preload(cgroup: JobCgroup | None, limits: Limits, uid: int) -> tuple[tuple[int, int, int], list[str]]:
    """At the hand-off: the (RLIMIT_NPROC, RLIMIT_DATA, RLIMIT_CPU) the harness sets for itself before the job
    runs (it adds the CPU time its imports took), and the preloaded harness's memory (TensorFlow's, before any
    participant code ran) added to the cgroup's limit.

    Processes are a cold job's exactly (the harness's few threads count, as a cold job's TensorFlow threads do);
    the data segment and memory already taken by the preloaded frameworks are added, so that the job has the
    room a cold job has for its own code. The totals stay bounded.
    """
    data = 2 * limits.memory_mb * 1024 * 1024  # as process._set_rlimits
    harness = _harness_status(cgroup, uid) if cgroup is not None else {}
    cpu = int(limits.wall_seconds * job_cpus(limits)) + 10  # as process._set_rlimits
    rlimits = (limits.max_processes, data + int(harness.get("VmData", "0 kB").split()[0]) * 1024, cpu)
    if cgroup is None:
        return rlimits, []
    try:
        _tasks, memory = _usage(cgroup)
        memory_bytes = limits.memory_mb * 1024 * 1024 + memory
        for name, folder in cgroup.folders.items():
            if name == "unified":
                _write(folder / "memory.max", str(memory_bytes))
            if name == "memory":
                swap = folder / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    _write(swap, str(memory_bytes))  # raised first: it may never be below the memory limit
                _write(folder / "memory.limit_in_bytes", str(memory_bytes))
    except (OSError, ValueError) as error:  # the job then has less room than a cold one, never more
        return rlimits, [f"the preloaded harness's memory could not be added to the job's limit ({error})"]
    return rlimits, []


def _harness_status(cgroup: JobCgroup, uid: int) -> dict[str, str]:
    """/proc/PID/status of the harness: the process of the job's uid in the cgroup."""
    for pid in sorted(cgroup.pids()):
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        except (OSError, ValueError):
            continue
        if str(uid) in fields.get("Uid", "").split():
            return {key: value.strip() for key, value in fields.items()}
    return {}


def _usage(cgroup: JobCgroup) -> tuple[int, int]:
    """(tasks, bytes of memory) the cgroup holds now."""
    folders = cgroup.folders
    if "unified" in folders:
        folder = folders["unified"]
        return int((folder / "pids.current").read_text()), int((folder / "memory.current").read_text())
    tasks = int((folders["pids"] / "pids.current").read_text())
    return tasks, int((folders["memory"] / "memory.usage_in_bytes").read_text())
