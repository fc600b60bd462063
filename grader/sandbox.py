"""Sandbox backends that run the harness on untrusted code: ``bwrap`` (default), ``none`` (development only).

Every backend takes a :class:`SandboxJob` and returns a :class:`SandboxResult`; the registry
``SANDBOXES`` maps ``WORKSHOP_SANDBOX`` names to backends.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.cgroups import JobCgroup

HARNESS = Path(__file__).with_name("harness.py")
INSIDE_CODE, INSIDE_DATA, INSIDE_OUT, INSIDE_HARNESS = (
    "/job/code",
    "/data",
    "/out",
    "/opt/workshop/harness.py",
)
INSIDE_WEIGHTS = "/opt/workshop/keras-weights"
BASE_UID = 61000


class SandboxUnavailable(Exception):
    """The chosen backend cannot run on this host; the message says what is missing."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job, in one place."""

    wall_seconds: float = 120
    memory_mb: int = 4096
    max_processes: int = 512
    max_open_files: int = 4096
    max_file_mb: int = 512
    log_head_bytes: int = 16 * 1024
    log_tail_bytes: int = 64 * 1024
    kill_grace_seconds: float = 5


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


@dataclass
class SandboxResult:
    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    log: str
    log_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)


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


def sandbox_environment(job: SandboxJob, home: str) -> dict[str, str]:
    """The job's whole environment: an allowlist, nothing inherited from the server."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "KERAS_HOME": f"{home}/.keras",
        "CUDA_VISIBLE_DEVICES": "" if job.gpu is None else "0",
        "OMP_NUM_THREADS": str(os.cpu_count() or 1),
    }


def _set_rlimits(limits: Limits) -> None:
    """Second layer under cgroups: inherited by bwrap, setpriv and the job."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
    file_bytes = limits.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))


def run_contained(
    argv: list[str],
    env: dict[str, str],
    limits: Limits,
    cgroup: JobCgroup | None,
    on_poll: Callable[[str], None] | None = None,
    poll_seconds: float = 1.0,
) -> SandboxResult:
    """Start ``argv`` in a new session, capture its output, kill the whole tree at the wall-clock limit."""
    capture = LogCapture(limits.log_head_bytes, limits.log_tail_bytes)

    def prepare_child() -> None:
        if cgroup is not None:
            cgroup.enter()
        _set_rlimits(limits)

    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=prepare_child,  # noqa: PLW1509 - runs before exec, only async-safe calls
        close_fds=True,
    )
    reader = threading.Thread(target=_drain, args=(process.stdout, capture), daemon=True)
    reader.start()
    timed_out = False
    deadline = started + limits.wall_seconds
    try:
        while process.poll() is None:
            if time.monotonic() >= deadline:
                timed_out = True
                break
            try:
                process.wait(timeout=min(poll_seconds, max(0.05, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if on_poll is not None:
                    on_poll(capture.text())
    finally:
        _kill_tree(process, cgroup)
        reader.join(timeout=limits.kill_grace_seconds)
    out_of_memory = cgroup.out_of_memory() if cgroup is not None else False
    notes = cgroup.cleanup() if cgroup is not None else []
    return SandboxResult(
        exit_code=process.returncode,
        timed_out=timed_out,
        out_of_memory=out_of_memory,
        log=capture.text(),
        log_bytes=capture.total,
        seconds=time.monotonic() - started,
        notes=notes,
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


class NoSandbox:
    """Plain subprocess, same harness. Unsafe: only for development on hosts without bubblewrap."""

    name = "none"

    def check_available(self) -> None:
        print("WARNING: WORKSHOP_SANDBOX=none runs participants' code WITHOUT isolation.", file=sys.stderr)

    def run(self, job: SandboxJob, on_poll: Callable[[str], None] | None = None) -> SandboxResult:
        spec = {
            **job.spec,
            "code_dir": str(job.code_dir),
            "data_dir": str(job.data_dir),
            "out_dir": str(job.out_dir),
            "weights_dir": str(job.weights_dir) if job.weights_dir and job.weights_dir.is_dir() else None,
        }
        spec_path = job.code_dir.parent / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        home = job.out_dir.parent / "home"
        home.mkdir(exist_ok=True)
        argv = [sys.executable, "-I", "-B", str(HARNESS), str(spec_path)]
        return run_contained(argv, sandbox_environment(job, str(home)), job.limits, None, on_poll)


class BwrapSandbox:
    """bubblewrap: new namespaces, read-only binds of exactly what the job needs, unprivileged uid."""

    name = "bwrap"

    def check_available(self) -> None:
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed: run `apt-get install bubblewrap` (as root), "
                "or choose WORKSHOP_SANDBOX=none explicitly for an UNSAFE development setup"
            )
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the bwrap sandbox needs the worker to run as root (it switches each job to an unprivileged uid)"
            )

    def run(self, job: SandboxJob, on_poll: Callable[[str], None] | None = None) -> SandboxResult:
        self.check_available()
        spec = {**job.spec, "code_dir": INSIDE_CODE, "data_dir": INSIDE_DATA, "out_dir": INSIDE_OUT}
        spec["weights_dir"] = INSIDE_WEIGHTS if job.weights_dir and job.weights_dir.is_dir() else None
        spec_path = job.code_dir.parent / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        etc = _write_identity_files(job.code_dir.parent, job.uid)
        argv = bwrap_argv(job, spec_path, etc)
        cgroup = JobCgroup.create(f"job-{job.uid}-{os.getpid()}-{time.monotonic_ns()}", job.limits)
        result = run_contained(argv, {"PATH": "/usr/bin:/bin"}, job.limits, cgroup, on_poll)
        if cgroup is None:
            result.notes.append("cgroups unavailable on this host: memory limited by rlimits only")
        return result


def _write_identity_files(job_dir: Path, uid: int) -> Path:
    """A minimal /etc/passwd and /etc/group naming only the job's user."""
    etc = job_dir / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(f"root:x:0:0::/:/usr/sbin/nologin\nworkshop:x:{uid}:{uid}::/tmp:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nworkshop:x:{uid}:\n")
    return etc


def _bind_with_parents(argv: list[str], path: Path, flag: str = "--ro-bind") -> None:
    """Bind ``path`` at the same place, creating each parent world-readable first.

    Started as root, bwrap would create missing parents with mode 0700, and the unprivileged job
    could not reach an interpreter under /root; Python would then silently use another stdlib.
    """
    for parent in reversed(path.parents):
        if str(parent) != "/":
            argv += ["--perms", "0755", "--dir", str(parent)]
    argv += [flag, str(path), str(path)]


def _python_roots() -> list[Path]:
    """The interpreter's installation and the virtualenv, without duplicates or nesting."""
    roots = sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}, key=lambda path: len(path.parts))
    kept: list[Path] = []
    for root in roots:
        if not any(root.is_relative_to(other) for other in kept):
            kept.append(root)
    return kept


SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf")


def bwrap_argv(job: SandboxJob, spec_path: Path, etc: Path) -> list[str]:
    """The full bubblewrap command line for one job (kept pure so tests can inspect it)."""
    home = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs
    argv = [
        "bwrap",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    for key, value in sandbox_environment(job, home).items():
        argv += ["--setenv", key, value]
    for system_dir in SYSTEM_DIRS:
        if os.path.islink(system_dir):
            argv += ["--symlink", os.readlink(system_dir), system_dir]
        elif os.path.isdir(system_dir):
            argv += ["--ro-bind", system_dir, system_dir]
    for name in SYSTEM_ETC:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--ro-bind", str(etc / "passwd"), "/etc/passwd", "--ro-bind", str(etc / "group"), "/etc/group"]
    for root in _python_roots():
        if not str(root).startswith(SYSTEM_DIRS):
            _bind_with_parents(argv, root)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/dev/shm"]  # noqa: S108 - private tmpfs
    argv += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", "/opt/workshop"]
    argv += ["--perms", "0755", "--dir", "/job", "--ro-bind", str(HARNESS), INSIDE_HARNESS]
    argv += ["--ro-bind", str(job.code_dir), INSIDE_CODE, "--ro-bind", str(spec_path), "/job/spec.json"]
    argv += ["--ro-bind", str(job.data_dir), INSIDE_DATA, "--bind", str(job.out_dir), INSIDE_OUT]
    if job.weights_dir is not None and job.weights_dir.is_dir():
        argv += ["--ro-bind", str(job.weights_dir), INSIDE_WEIGHTS]
    argv += ["--chdir", home, "--"]
    argv += ["setpriv", f"--reuid={job.uid}", f"--regid={job.uid}", "--clear-groups", "--no-new-privs"]
    argv += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    argv += [str(Path(sys.prefix) / "bin" / "python"), "-I", "-B", INSIDE_HARNESS, "/job/spec.json"]
    return argv


SANDBOXES: dict[str, Callable[[], BwrapSandbox | NoSandbox]] = {"bwrap": BwrapSandbox, "none": NoSandbox}


def get_sandbox(name: str) -> BwrapSandbox | NoSandbox:
    try:
        return SANDBOXES[name]()
    except KeyError:
        raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(SANDBOXES)}") from None
