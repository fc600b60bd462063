"""Sandbox backends that run the harness on untrusted code: ``bwrap`` (default), ``docker``, ``none`` (development).

Every backend takes a :class:`SandboxJob` and returns a :class:`SandboxResult`; the registry
``SANDBOXES`` maps ``WORKSHOP_SANDBOX`` names to backends. The layers and what each one stops are
described in SECURITY.md; ``workshop sandbox check`` proves them on a host.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.cgroups import CGROUP_ROOT, CgroupUnavailable, JobCgroup, cgroup_version, pid_alive
from grader.seccomp import filter_fd, memory_file
from grader.slot_lock import BASE_UID, hold_lock

HARNESS = Path(__file__).with_name("harness.py")
INSIDE_CODE, INSIDE_DATA, INSIDE_OUT, INSIDE_HARNESS = (
    "/job/code",
    "/data",
    "/out",
    "/opt/workshop/harness.py",
)
INSIDE_WEIGHTS = "/opt/workshop/keras-weights"
INSIDE_SPEC = "/job/spec.json"
MIN_JOB_UID = 1000  # the per-uid sweep refuses anything below: system and human accounts
GPU_CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
DEFAULT_DOCKER_IMAGE = "workshop-server:latest"
DOCKER_PYTHON = "/app/.venv/bin/python"
CONTAINER_PREFIX = "workshop-job-"  # then the job's uid, a dash and a random hex suffix
JOB_LABEL, UID_LABEL, HOST_LABEL = "workshop.job", "workshop.uid", "workshop.host"


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


@dataclass
class SandboxResult:
    """What a backend reports about one run: how it ended, which limit stopped it, the capped log, notes."""

    exit_code: int | None
    timed_out: bool
    out_of_memory: bool
    log: str
    log_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    containment: dict = field(default_factory=dict)  # facts about the layers that applied (for checks)


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


def job_cpus(limits: Limits) -> float:
    """The CPU cores a job may use: its quota, or the whole host."""
    return float(limits.cpus) if limits.cpus else float(os.cpu_count() or 1)


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
        "CUDA_VISIBLE_DEVICES": "" if job.gpu is None else "0",  # the job sees only its own GPU, as device 0
        "OMP_NUM_THREADS": str(max(1, int(job_cpus(job.limits)))),
    }


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

    def prepare_child() -> None:
        if cgroup is not None:
            cgroup.enter()
        if rlimits:
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
        pass_fds=pass_fds,
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
                    on_poll(capture.text())  # may raise (e.g. the job was cancelled): the finally still cleans up
    finally:
        _kill_tree(process, cgroup)
        reader.join(timeout=limits.kill_grace_seconds)
        out_of_memory = cgroup.out_of_memory() if cgroup is not None else False
        described = cgroup.describe() if cgroup is not None else None  # read back before the folders go
        notes = cgroup.cleanup() if cgroup is not None else []
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


# --- processes and GPUs on the host -------------------------------------------------------------


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


@contextlib.contextmanager
def uid_run_lock(uid: int, lock_dir: Path | None = None) -> Iterator[None]:
    """Hold the uid for one job across processes: the sweeps kill every process of the uid, so two jobs
    sharing one (a misconfiguration; worker slots each lock their own) wait for each other instead.
    The lock file lives in the slot lock folder (grader/slot_lock.py: checked, never through a link)."""
    with hold_lock(f"uid-{uid}.run.lock", lock_dir):
        yield


# --- writable file systems: size-capped tmpfs mounted per job on the host -------------------------

MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MNT_DETACH = 0x2
SCRATCH_SOURCE = "workshop-job-"
_LIBC = ctypes.CDLL(None, use_errno=True)


def scratch_dirs(job: SandboxJob) -> dict[str, tuple[Path, str, int, bool]]:
    """Writable places of a job: name -> (host folder, place inside, size in MB, noexec)."""
    limits = job.limits
    return {
        "tmp": (job.job_dir / "tmp", "/tmp", limits.tmp_mb, False),  # noqa: S108 - the job's private tmpfs
        "shm": (job.job_dir / "shm", "/dev/shm", limits.shm_mb, False),  # noqa: S108 - private tmpfs
        "out": (job.out_dir, INSIDE_OUT, limits.out_mb, True),
    }


def mount_tmpfs(target: Path, size_mb: int, inodes: int, uid: int, noexec: bool = False) -> None:
    """Mount a size- and inode-capped tmpfs owned by ``uid`` (mode 0700) on ``target`` (root only)."""
    target.mkdir(mode=0o700, exist_ok=True)
    options = f"size={size_mb}m,nr_inodes={inodes},mode=0700,uid={uid},gid={uid}"
    flags = MS_NOSUID | MS_NODEV | (MS_NOEXEC if noexec else 0)
    source = f"{SCRATCH_SOURCE}{os.getpid()}".encode()  # the owner's pid: stale mounts can be found later
    if _LIBC.mount(source, os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        code = ctypes.get_errno()
        raise SandboxUnavailable(f"cannot mount a tmpfs on {target}: {os.strerror(code)}")


def unmount(target: Path) -> None:
    """Detach a mount (lazily, so a stray open file cannot keep it); nothing when ``target`` is no mount."""
    if os.path.ismount(target) and _LIBC.umount2(os.fsencode(target), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"cannot unmount {target}: {os.strerror(code)}")


def unmount_stale_scratch(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[str]:
    """Unmount job scratch file systems whose worker died (SIGKILL, crash); returns their mount points."""
    stale = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        source = fields[fields.index("-") + 2] if "-" in fields else ""
        if source.startswith(SCRATCH_SOURCE) and source[len(SCRATCH_SOURCE) :].isdigit():
            if not pid_alive(int(source[len(SCRATCH_SOURCE) :])):
                point = re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), fields[4])  # \040: a space
                unmount(Path(point))
                stale.append(point)
    return stale


def mount_scratch(job: SandboxJob) -> None:
    """Mount the job's /tmp, /dev/shm and output folder as capped tmpfs; on failure nothing stays mounted."""
    mounted = []
    try:
        for host, _inside, size_mb, noexec in scratch_dirs(job).values():
            inodes = job.limits.max_inodes if host != job.out_dir else 1024
            mount_tmpfs(host, size_mb, inodes, job.uid, noexec)
            mounted.append(host)
    except BaseException:
        for host in mounted:
            unmount(host)
        raise


# --- backends -------------------------------------------------------------------------------------


def write_spec(job: SandboxJob, spec: dict) -> Path:
    """The job spec next to the code folder (bound read-only into the sandbox)."""
    spec_path = job.job_dir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    return spec_path


def inside_spec(job: SandboxJob) -> dict:
    """The job spec with the paths the harness sees inside bwrap and docker."""
    spec = {**job.spec, "code_dir": INSIDE_CODE, "data_dir": INSIDE_DATA, "out_dir": INSIDE_OUT}
    spec["weights_dir"] = INSIDE_WEIGHTS if job.weights_dir and job.weights_dir.is_dir() else None
    return spec


class Sandbox(ABC):
    """What the executor needs of a backend: ``check_available``, ``run_program``, ``release``."""

    name = ""

    @abstractmethod
    def check_available(self) -> None:
        """Raise SandboxUnavailable when this backend cannot isolate a job on this host."""

    @abstractmethod
    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` with the job's spec under this backend and report how it ended."""

    def run(self, job: SandboxJob, on_poll: Callable[[str], None] | None = None) -> SandboxResult:
        """Run the harness on the job's submission; ``on_poll`` gets the log so far, about once a second."""
        return self.run_program(job, HARNESS, on_poll)


class IsolatedSandbox(Sandbox):
    """A backend that isolates: one job per slot uid at a time, each checked for isolation first."""

    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` (the harness, or the self-check's probe) with the job's spec, inside the sandbox."""
        self.check_available()
        with uid_run_lock(job.uid):
            return self._run_locked(job, program, on_poll)

    @abstractmethod
    def _run_locked(self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None) -> SandboxResult:
        """Run ``program`` while this process holds the job's uid."""


class NoSandbox(Sandbox):
    """Plain subprocess, same harness. Unsafe: only for development on hosts without bubblewrap."""

    name = "none"

    def check_available(self) -> None:
        """Always available; says loudly that it isolates nothing."""
        print(
            "WARNING: WORKSHOP_SANDBOX=none runs participants' code WITHOUT ANY ISOLATION: it can read the "
            "labels, the database and the server's secrets. Use it only on a development machine.",
            file=sys.stderr,
        )

    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` as a plain subprocess of this user, with the host's paths in the spec."""
        spec = {
            **job.spec,
            "code_dir": str(job.code_dir),
            "data_dir": str(job.data_dir),
            "out_dir": str(job.out_dir),
            "weights_dir": str(job.weights_dir) if job.weights_dir and job.weights_dir.is_dir() else None,
        }
        spec_path = write_spec(job, spec)
        home = job.job_dir / "home"
        home.mkdir(exist_ok=True)
        argv = [sys.executable, "-I", "-B", str(program), str(spec_path)]
        return run_contained(argv, sandbox_environment(job, str(home)), job.limits, None, on_poll)

    def release(self, job: SandboxJob) -> None:
        """Nothing to undo: the none backend mounts nothing."""


class BwrapSandbox(IsolatedSandbox):
    """bubblewrap: new namespaces, read-only binds of exactly what the job needs, unprivileged uid, seccomp."""

    name = "bwrap"

    def __init__(
        self,
        dev_dir: Path = Path("/dev"),
        proc: Path = Path("/proc"),
        gpu_release_seconds: float = 15,
        cgroup_root: Path = CGROUP_ROOT,
    ):
        self.dev_dir, self.proc, self.gpu_release_seconds = dev_dir, proc, gpu_release_seconds
        self.cgroup_root = Path(cgroup_root)  # where job cgroups are made (tests point it at an unusable folder)

    def check_available(self) -> None:
        """Raise SandboxUnavailable, saying what to install or change, where bwrap cannot run jobs."""
        if shutil.which("bwrap") is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed: run `apt-get install bubblewrap` (as root), "
                "or choose WORKSHOP_SANDBOX=none explicitly for an UNSAFE development setup"
            )
        if shutil.which("setpriv") is None:
            raise SandboxUnavailable("setpriv (util-linux) is missing: it drops each job to its unprivileged uid")
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "the bwrap sandbox needs the worker to run as root (it switches each job to an unprivileged uid)"
            )
        if cgroup_version(self.cgroup_root) is None:
            raise SandboxUnavailable(
                f"no writable cgroup hierarchy at {self.cgroup_root}: every job runs in its own cgroup (memory, "
                "process and CPU limits) and no job runs without one; run the worker as root on a host with "
                "cgroups v2 (or v1 with a memory controller) mounted there"
            )

    def _job_cgroup(self, job: SandboxJob) -> JobCgroup:
        """The job's own cgroup; without it the job does not run (rlimits alone do not bound its memory)."""
        try:
            return JobCgroup.make(f"job-{job.uid}-{os.getpid()}-{time.monotonic_ns()}", job.limits, self.cgroup_root)
        except CgroupUnavailable as error:
            raise SandboxUnavailable(
                f"job not started, it has no cgroup ({error}); jobs never run on rlimits alone"
            ) from None

    def _run_locked(self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None) -> SandboxResult:
        unmount_stale_scratch()
        JobCgroup.remove_stale(self.cgroup_root)
        notes = _sweep_note(sweep_uid(job.uid, self.proc), "before the job")
        if job.gpu is not None:
            self._require_free_gpu(job.gpu)
        cgroup = self._job_cgroup(job)  # first: where it cannot be made, nothing else was set up
        try:
            result = self._run_in_cgroup(job, program, on_poll, cgroup)
        finally:
            cgroup.cleanup()  # run_contained removed it already unless the start failed; removing twice is harmless
            leftovers = sweep_uid(job.uid, self.proc)  # the final word: nothing of this uid survives the job
        notes += _sweep_note(leftovers, "after the job")
        if job.gpu is not None and (holders := self._gpu_holders_after_wait(job.gpu)):
            notes.append(f"GPU {job.gpu} is still held by processes {holders}; the next job waits for it")
        result.notes = [*result.notes, *notes]
        result.containment.update(seccomp=True, uid=job.uid, scratch_mb={"tmp": job.limits.tmp_mb})
        return result

    def _run_in_cgroup(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None, cgroup: JobCgroup
    ) -> SandboxResult:
        spec_path = write_spec(job, inside_spec(job))
        etc = _write_identity_files(job.job_dir, job.uid)
        mount_scratch(job)
        seccomp = filter_fd()
        arguments = -1
        try:
            argv = bwrap_argv(job, spec_path, etc, seccomp_fd=seccomp, program=program, dev_dir=self.dev_dir)
            split = argv.index("--")  # options go through a file: the job reads /proc/1/cmdline, and there it
            options, command = argv[1:split], argv[split:]  # sees "bwrap --args N -- setpriv ...", no host paths
            arguments = memory_file(b"".join(os.fsencode(arg) + b"\0" for arg in options))
            launch = [argv[0], "--args", str(arguments), *command]
            fds = (seccomp, arguments)
            return run_contained(launch, {"PATH": "/usr/bin:/bin"}, job.limits, cgroup, on_poll, pass_fds=fds)
        finally:
            os.close(seccomp)
            if arguments >= 0:
                os.close(arguments)
            for name in ("tmp", "shm"):
                unmount(scratch_dirs(job)[name][0])

    def release(self, job: SandboxJob) -> None:
        """Unmount the output folder once the host has read it (its pages are freed with it)."""
        unmount(job.out_dir)

    def _gpu_holders_after_wait(self, gpu: int) -> list[int]:
        return wait_for_gpu_release(gpu, self.gpu_release_seconds, self.proc, self.dev_dir)

    def _require_free_gpu(self, gpu: int) -> None:
        """Before a job: the previous one (or anything else) must have let go of the GPU."""
        if holders := self._gpu_holders_after_wait(gpu):
            raise SandboxUnavailable(f"GPU {gpu} is still held by processes {holders}; not starting a job on it")


def _sweep_note(pids: list[int], when: str) -> list[str]:
    return [f"{len(pids)} process(es) of the job's uid were still running {when} and were killed"] if pids else []


def _write_identity_files(job_dir: Path, uid: int) -> Path:
    """A minimal /etc/passwd, /etc/group and /etc/hosts naming only the job's user and localhost."""
    etc = job_dir / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text(f"root:x:0:0::/:/usr/sbin/nologin\nworkshop:x:{uid}:{uid}::/tmp:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nworkshop:x:{uid}:\n")
    (etc / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n")
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


def bwrap_argv(
    job: SandboxJob,
    spec_path: Path,
    etc: Path,
    *,
    seccomp_fd: int | None = None,
    program: Path = HARNESS,
    dev_dir: Path = Path("/dev"),
) -> list[str]:
    """The full bubblewrap command line for one job (kept pure so tests can inspect it)."""
    home = "/tmp"  # noqa: S108 - the sandbox's own private tmpfs
    argv = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox"]
    for key, value in sandbox_environment(job, home).items():
        argv += ["--setenv", key, value]
    for system_dir in SYSTEM_DIRS:
        if os.path.islink(system_dir):
            argv += ["--symlink", os.readlink(system_dir), system_dir]
        elif os.path.isdir(system_dir):
            argv += ["--ro-bind", system_dir, system_dir]
    argv += ["--perms", "0755", "--dir", "/etc"]  # else bwrap (as root) makes it 0700: no ld.so.cache for the job
    for name in SYSTEM_ETC:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group", "hosts"):
        argv += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if job.gpu is not None:
        for name in gpu_device_nodes(job.gpu, dev_dir):
            argv += ["--dev-bind", str(dev_dir / name), f"/dev/{name}"]
    for host, inside, _size, _noexec in scratch_dirs(job).values():
        argv += ["--bind", str(host), inside]  # size-capped tmpfs mounted on the host by mount_scratch
    # after /tmp: an interpreter or virtualenv under /tmp (a checkout there) must not be hidden by it
    for root in _python_roots():
        if not str(root).startswith(SYSTEM_DIRS):
            _bind_with_parents(argv, root)
    argv += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", "/opt/workshop"]
    argv += ["--perms", "0755", "--dir", "/job", "--ro-bind", str(program), INSIDE_HARNESS]
    argv += ["--ro-bind", str(job.code_dir), INSIDE_CODE, "--ro-bind", str(spec_path), INSIDE_SPEC]
    argv += ["--ro-bind", str(job.data_dir), INSIDE_DATA]
    if job.weights_dir is not None and job.weights_dir.is_dir():
        argv += ["--ro-bind", str(job.weights_dir), INSIDE_WEIGHTS]
    argv += ["--remount-ro", "/"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += ["--chdir", home, "--"]
    argv += ["setpriv", f"--reuid={job.uid}", f"--regid={job.uid}", "--clear-groups", "--no-new-privs"]
    argv += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    argv += [str(Path(sys.prefix) / "bin" / "python"), "-I", "-B", INSIDE_HARNESS, INSIDE_SPEC]
    return argv


class DockerSandbox(IsolatedSandbox):
    """Docker, for self-hosted GPU servers: no network, no capabilities, read-only image, the same mounts."""

    name = "docker"

    def __init__(self, image: str | None = None, docker: str = "docker", python: str = DOCKER_PYTHON):
        self.image, self.docker, self.python = image or DEFAULT_DOCKER_IMAGE, docker, python

    def check_available(self) -> None:
        """Raise SandboxUnavailable unless the engine answers and has the image (it is never pulled)."""
        if shutil.which(self.docker) is None:
            raise SandboxUnavailable(f"the docker command ({self.docker}) is not installed")
        try:
            subprocess.run(
                [self.docker, "image", "inspect", "--format", "{{.Id}}", self.image],
                capture_output=True,
                timeout=30,
                check=True,
            )
        except subprocess.CalledProcessError as error:
            reason = error.stderr.decode(errors="replace").strip()[:300]
            raise SandboxUnavailable(f"docker cannot use the image {self.image!r}: {reason}") from None
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SandboxUnavailable(f"no Docker engine answered: {error}") from None

    def _run_locked(self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None) -> SandboxResult:
        # The output folder is a plain bind: a tmpfs mounted here would be invisible to a daemon outside this
        # worker's mount namespace (compose). Its size is bounded per file only (SECURITY.md, residual risks).
        removed = self.remove_leftovers(job.uid)
        spec_path = write_spec(job, inside_spec(job))
        name = f"{CONTAINER_PREFIX}{job.uid}-{uuid.uuid4().hex[:12]}"
        argv = docker_argv(
            job, spec_path, image=self.image, name=name, docker=self.docker, python=self.python, program=program
        )
        try:
            result = run_contained(argv, self._environment(), job.limits, None, on_poll, rlimits=False)
        finally:  # killing the client does not stop the container: remove it by name, whatever happened
            self._docker("rm", "--force", name)
        # docker reports a kill by its memory cgroup as exit status 137 (128 + SIGKILL)
        result.out_of_memory = result.out_of_memory or (result.exit_code == 137 and not result.timed_out)
        result.containment.update(seccomp="docker default profile", uid=job.uid)
        if removed:
            result.notes.append(f"removed {len(removed)} container(s) of this slot that a stopped worker left running")
        return result

    def remove_leftovers(self, uid: int) -> list[str]:
        """Remove the containers of ``uid`` that a killed worker on this host left behind; returns their names.

        Called while this process holds the uid (slot and run locks), so any container of the uid from this
        host is a leftover. Only containers with our labels, this uid and this host, and a name matching
        ``workshop-job-<uid>-<hex>`` exactly, are touched.
        """
        listing = self._docker(
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            f"label={JOB_LABEL}=1",
            "--filter",
            f"label={UID_LABEL}={uid}",
            "--filter",
            f"label={HOST_LABEL}={os.uname().nodename}",
            "--format",
            "{{.ID}} {{.Names}}",
        )
        if listing.returncode != 0:
            reason = listing.stderr.strip()[:300]
            raise SandboxUnavailable(f"cannot list the containers a stopped worker may have left: {reason}")
        pattern = re.compile(rf"/?{re.escape(CONTAINER_PREFIX)}{uid}-[0-9a-f]+")
        found = [line.split(" ", 1) for line in listing.stdout.splitlines() if " " in line]
        leftovers = [(ident, name) for ident, name in found if pattern.fullmatch(name)]
        if leftovers:
            removal = self._docker("rm", "--force", *(ident for ident, _name in leftovers))
            if removal.returncode != 0:
                raise SandboxUnavailable(f"cannot remove leftover containers: {removal.stderr.strip()[:300]}")
        return sorted(name.lstrip("/") for _ident, name in leftovers)

    def _environment(self) -> dict[str, str]:
        """What the docker client needs from ours: PATH and DOCKER_* (e.g. DOCKER_HOST), nothing else."""
        return {key: value for key, value in os.environ.items() if key == "PATH" or key.startswith("DOCKER_")}

    def _docker(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.docker, *arguments], capture_output=True, text=True, timeout=60, check=False, env=self._environment()
        )

    def release(self, job: SandboxJob) -> None:
        """Nothing to undo: docker removed the container, the output folder is a plain one."""


def job_container_labels(uid: int) -> dict[str, str]:
    """Labels on every job container: a worker restarted on this host finds (and removes) its uid's leftovers."""
    return {JOB_LABEL: "1", UID_LABEL: str(uid), HOST_LABEL: os.uname().nodename}


def docker_argv(
    job: SandboxJob,
    spec_path: Path,
    *,
    image: str = DEFAULT_DOCKER_IMAGE,
    name: str = "workshop-job",
    docker: str = "docker",
    python: str = DOCKER_PYTHON,
    program: Path = HARNESS,
) -> list[str]:
    """The full ``docker run`` command line for one job (kept pure so tests can inspect it)."""
    limits = job.limits
    memory = f"{limits.memory_mb}m"
    argv = [docker, "run", "--rm", "--name", name, "--pull", "never", "--network", "none", "--hostname", "sandbox"]
    for key, value in job_container_labels(job.uid).items():
        argv += ["--label", f"{key}={value}"]
    argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only", "--ipc", "private"]
    argv += ["--pids-limit", str(limits.max_processes), "--memory", memory, "--memory-swap", memory]
    argv += ["--cpus", f"{job_cpus(limits):g}", "--user", f"{job.uid}:{job.uid}", "--log-driver", "none"]
    argv += ["--ulimit", f"nofile={limits.max_open_files}", "--ulimit", "core=0"]
    argv += ["--ulimit", f"fsize={limits.max_file_mb * 1024 * 1024}"]
    argv += ["--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.tmp_mb}m,nr_inodes={limits.max_inodes},mode=1777"]  # noqa: S108
    argv += ["--shm-size", f"{limits.shm_mb}m", "--workdir", "/tmp", "--entrypoint", python]  # noqa: S108
    if job.gpu is not None:
        argv += ["--gpus", f"device={job.gpu}"]
    for key, value in sandbox_environment(job, "/tmp").items():  # noqa: S108
        argv += ["--env", f"{key}={value}"]
    mounts = [(job.code_dir, INSIDE_CODE, True), (spec_path, INSIDE_SPEC, True), (job.data_dir, INSIDE_DATA, True)]
    mounts += [(job.out_dir, INSIDE_OUT, False), (program, INSIDE_HARNESS, True)]
    if job.weights_dir is not None and job.weights_dir.is_dir():
        mounts.append((job.weights_dir, INSIDE_WEIGHTS, True))
    for source, target, read_only in mounts:
        argv += ["--mount", f"type=bind,source={source},target={target}" + (",readonly" if read_only else "")]
    argv += [image, "-I", "-B", INSIDE_HARNESS, INSIDE_SPEC]
    return argv


Sandbox = BwrapSandbox | DockerSandbox | NoSandbox
SANDBOXES: dict[str, Callable[..., Sandbox]] = {"bwrap": BwrapSandbox, "docker": DockerSandbox, "none": NoSandbox}


def get_sandbox(name: str, **options) -> Sandbox:
    """The backend registered as ``name``; ``options`` go to its constructor (e.g. ``image`` for docker)."""
    try:
        factory = SANDBOXES[name]
    except KeyError:
        raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(SANDBOXES)}") from None
    return factory(**options)
