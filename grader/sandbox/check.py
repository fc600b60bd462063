"""``workshop sandbox check``: run a fast probe through the real sandbox on this host and judge what it saw.

The probe (``grader/sandbox/probe.py``, standard library only) runs with the same command line as a
graded job; the host opens loopback and abstract-socket listeners first and afterwards checks that they
heard nothing, that the kernel holds the cgroup limits, and that no process of the job's uid is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox import get_sandbox
from grader.sandbox.gpus import Gpu
from grader.sandbox.host import processes_of_uid
from grader.sandbox.layout import sandbox_environment
from grader.sandbox.limits import BASE_UID, Limits, SandboxJob, SandboxResult, SandboxUnavailable
from grader.sandbox.seccomp import syscall_table
from grader.scoring import read_untrusted

PROBE = Path(__file__).with_name("probe.py")  # bound into the sandbox (or run by path) in place of the harness
CHECK_LIMITS = Limits(
    wall_seconds=60, memory_mb=256, max_processes=64, tmp_mb=32, shm_mb=16, out_mb=4, max_inodes=1024, cpus=1
)
GPU_PROBE = Path(__file__).with_name("gpu_probe.py")  # one GPU's view from inside: its nodes and the CUDA driver
GPU_LIMITS = Limits(wall_seconds=60, memory_mb=2048, max_processes=64, tmp_mb=32, shm_mb=16, out_mb=4, cpus=1)
CUDA_ERRORS = {100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE", 999: "CUDA_ERROR_UNKNOWN"}


@dataclass(frozen=True)
class CheckRow:
    """One line of the self-check's table."""

    name: str
    ok: bool
    detail: str


class Listeners:
    """Sockets on the host's loopback and an abstract unix socket that the sandbox must not reach."""

    def __init__(self):
        self.sockets: dict[str, socket.socket] = {}
        self.abstract = f"workshop-check-{uuid.uuid4().hex}"
        self._open("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
        with contextlib.suppress(OSError):  # a host without IPv6 has no ::1 to protect
            self._open("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 0))
        self._open("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0))
        self._open("abstract", socket.AF_UNIX, socket.SOCK_STREAM, "\0" + self.abstract)

    def _open(self, name: str, family: int, kind: int, address) -> None:
        sock = socket.socket(family, kind)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(16)
        sock.setblocking(False)
        self.sockets[name] = sock

    def ports(self) -> dict[str, int]:
        """The port of each IP listener, by name."""
        return {name: sock.getsockname()[1] for name, sock in self.sockets.items() if name != "abstract"}

    def heard(self) -> list[str]:
        """Names of the listeners that received a connection or a datagram."""
        heard = []
        for name, sock in self.sockets.items():
            try:
                if sock.type == socket.SOCK_STREAM:
                    sock.accept()[0].close()
                else:
                    sock.recvfrom(1024)
                heard.append(name)
            except BlockingIOError:
                continue
        return heard

    def close(self) -> None:
        """Close every listener."""
        for sock in self.sockets.values():
            sock.close()


@contextlib.contextmanager
def _probe_folders(work_dir: Path | None, uid: int) -> Iterator[dict[str, Path]]:
    """A throwaway job: code, output, public data, and private labels the probe must not find."""
    root = Path(tempfile.mkdtemp(prefix="sandbox-check-", dir=work_dir))
    try:
        os.chmod(root, 0o711)  # noqa: S103 - traversable for the bind mounts, not listable
        folders = {name: root / name for name in ("job", "public", "private")}
        for folder in folders.values():
            folder.mkdir(mode=0o755)
        (folders["job"] / "code").mkdir(mode=0o755)
        (folders["job"] / "code" / "submission.py").write_text("def train(data):\n    return None\n")
        (folders["job"] / "out").mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(folders["job"] / "out", uid, uid)
        (folders["public"] / "test.csv").write_text("image_id\nimg-1\n")
        yield folders
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class ProbeOutcome:
    """What one probe run left: its facts, the backend's result, and what the host saw around it."""

    facts: dict
    result: SandboxResult
    heard: list[str]  # host listeners that received anything
    leftovers: list[int]  # processes of the uid still alive afterwards
    backend: str
    uid: int


def run_sandbox_check(
    backend_name: str = "bwrap", *, uid: int = BASE_UID, work_dir: Path | None = None, options: dict | None = None
) -> list[CheckRow]:
    """Probe the sandbox ``backend_name`` on this host; every row must be ok before jobs may run."""
    if backend_name == "none":  # never run the probe unconfined: it does what a hostile job would
        return [CheckRow("isolation", False, "WORKSHOP_SANDBOX=none runs jobs without any isolation")]
    try:
        get_sandbox(backend_name, **(options or {})).check_available()
    except Exception as error:  # noqa: BLE001 - the table says why, whatever it was
        return [CheckRow("backend available", False, str(error))]
    try:
        outcome = probe_sandbox(backend_name, uid=uid, work_dir=work_dir, options=options)
    except SandboxUnavailable as error:  # e.g. the probe's cgroup could not be made: it was not started
        return [CheckRow("probe started (own cgroup, mounts, GPU)", False, str(error))]
    return judge(outcome)


def probe_sandbox(
    backend_name: str, *, uid: int = BASE_UID, work_dir: Path | None = None, options: dict | None = None
) -> ProbeOutcome:
    """Run the probe through ``backend_name`` as a job of ``uid``, with listeners open on the host."""
    backend = get_sandbox(backend_name, **(options or {}))
    listeners = Listeners()
    marker = f"label-secret-{uuid.uuid4().hex}"
    # a host process the job must neither see nor signal: this one, unless it is a container's init (pid 1), a
    # number the job's own container has too (a worker in a container, docker backend): then a child of ours
    stand_in = subprocess.Popen(["sleep", "600"]) if os.getpid() == 1 else None  # noqa: S607
    try:
        with _probe_folders(work_dir, uid) as folders:
            (folders["private"] / "test_labels.csv").write_text(f"image_id,label\nimg-1,1\n# {marker}\n")
            spec = {**_probe_spec(listeners, folders, marker), "host_pid": stand_in.pid if stand_in else os.getpid()}
            job = SandboxJob(
                folders["job"] / "code", folders["job"] / "out", folders["public"], spec, CHECK_LIMITS, uid=uid
            )
            try:
                result = backend.run_program(job, PROBE)
                raw = read_untrusted(job.out_dir, "probe.json", 1024 * 1024)
            finally:
                backend.release(job)
            leftovers = processes_of_uid(uid)
        facts = json.loads(raw) if raw else {}
        heard = listeners.heard()
    finally:
        listeners.close()
        if stand_in is not None:
            stand_in.kill()
            stand_in.wait()
    return ProbeOutcome(facts, result, heard, leftovers, backend_name, uid)


def _probe_spec(listeners: Listeners, folders: dict[str, Path], marker: str) -> dict:
    table = syscall_table()
    numbers = {name: table.denied[name] for name in ("keyctl", "io_uring_setup", "ptrace")}
    return {
        "ports": listeners.ports(),
        "abstract": listeners.abstract,
        "memory_mb": CHECK_LIMITS.memory_mb,
        "max_processes": CHECK_LIMITS.max_processes,
        "host_private": str(folders["private"]),
        "host_job_dir": str(folders["job"]),
        "marker_parts": [marker[:8], marker[8:]],  # never whole in the spec, which the probe can read
        "syscalls": {**numbers, "unshare": table.unshare},
        "machine": platform.machine(),
        "host_pid": os.getpid(),
    }


def judge(outcome: ProbeOutcome) -> list[CheckRow]:
    """Turn the probe's facts and the host's observations into the table's rows."""
    facts, result = outcome.facts, outcome.result
    if not facts:
        return [CheckRow("probe ran", False, f"no facts came back (exit {result.exit_code}): {result.log[-400:]}")]
    rows = [CheckRow("probe ran", True, f"{result.seconds:.1f} s, exit code {result.exit_code}")]
    for check in (_identity, _privileges, _seccomp, _network, _limits, _files, _environment, _interpreter):
        rows.append(check(facts, outcome))
    left = outcome.leftovers
    rows.append(
        CheckRow("nothing outlives the job", not left, f"processes of uid {outcome.uid} left: {left or 'none'}")
    )
    return rows


def _identity(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    uid = outcome.uid
    groups = ([], [uid]) if outcome.backend == "docker" else ([],)  # runc keeps the primary gid as the only group
    ok = facts["uid"] == [uid, uid] and facts["gid"] == [uid, uid] and facts["groups"] in groups
    pids = facts["visible_pids"]
    ok = ok and not facts["host_pid_visible"] and len(pids) < 10
    detail = f"uid {facts['uid']}, gid {facts['gid']}, groups {facts['groups']}, {len(pids)} processes visible"
    return CheckRow("own unprivileged uid, own process table", ok, detail)


def _privileges(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    caps = facts["caps"]
    ok = all(value == "0000000000000000" for value in caps.values()) and facts["no_new_privs"] == "1"
    ok = ok and facts["signal_host"] != "allowed" and facts["lower_oom_score"] != "allowed"
    detail = f"CapEff {caps.get('CapEff')}, CapBnd {caps.get('CapBnd')}, NoNewPrivs {facts['no_new_privs']}"
    return CheckRow("no capabilities, no new privileges", ok, detail)


def _seccomp(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    calls = facts["seccomp"]
    ok = facts["seccomp_mode"] == "2" and all(calls[name] == "EPERM" for name in calls if name != "int80")
    if "int80" in calls:
        ok = ok and calls["int80"] == "SIGSYS"
    detail = ", ".join(f"{name} {value}" for name, value in calls.items())
    return CheckRow("seccomp filter active", ok, f"mode {facts['seccomp_mode']}; {detail}")


def _network(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    net = facts["network"]
    attempts = {name: net[name] for name in ("tcp4", "tcp6", "udp4", "abstract") if name in net}
    heard = outcome.heard
    ok = net["interfaces"] == ["lo"] and not net["routes"] and not heard and net["dns"] != "allowed"
    ok = ok and all(value != "allowed" or name == "udp4" for name, value in attempts.items())
    detail = (
        f"interfaces {net['interfaces']}, routes {net['routes'] or 'none'}, host listeners heard {heard or 'nothing'}"
    )
    return CheckRow("no network (loopback of its own only)", ok, detail)


def _limits(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    cgroup = outcome.result.containment.get("cgroup") or {}
    limits = CHECK_LIMITS
    if outcome.backend == "docker":  # docker made the cgroup; the killed child shows it holds
        held = True
    else:
        held = cgroup.get("memory") == str(limits.memory_mb * 2**20) and cgroup.get("pids") == str(limits.max_processes)
        held = held and cgroup.get("cpu") is not None
    enforced = facts["memory"] == "killed by SIGKILL" and facts["forks"] < limits.max_processes
    detail = (
        f"memory child {facts['memory']}; {facts['forks']} forks of {limits.max_processes} allowed; "
        f"cgroup {json.dumps(cgroup) if cgroup else 'none'}"
    )
    return CheckRow("cgroup limits hold (memory, processes, CPU)", held and enforced, detail)


def _files(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    writes = facts["writes"]
    scratch = "/tmp/x"  # noqa: S108 - inside the sandbox: its private tmpfs
    read_only = all(value != "allowed" for path, value in writes.items() if path != scratch)
    tmp_ok = writes.get(scratch) == "allowed" and facts["tmp_mb"] <= CHECK_LIMITS.tmp_mb * 1.05
    hidden = not facts["labels_found"] and not facts["private_path"] and not facts["host_work_dir"]
    hidden = hidden and facts["data_files"] == ["test.csv"] and facts["test_header"] == "image_id"
    detail = (
        f"labels found {facts['labels_found'] or 'none'}; writable {[p for p, v in writes.items() if v == 'allowed']}"
        f"; /tmp {facts['tmp_mb']:.0f} MB"
    )
    return CheckRow("labels hidden, code and system read-only, /tmp capped", read_only and tmp_ok and hidden, detail)


def _environment(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    allowed = set(sandbox_environment(SandboxJob(Path(), Path(), Path(), {}, CHECK_LIMITS), "/tmp"))  # noqa: S108
    extra = sorted(set(facts["env"]) - allowed - {"HOSTNAME", "PWD"})  # docker adds HOSTNAME
    ok = not extra and not facts["environ_leaks"]
    return CheckRow("environment from the allowlist only", ok, f"unexpected {extra or 'none'}")


def _interpreter(facts: dict, outcome: ProbeOutcome) -> CheckRow:
    own = outcome.backend == "docker" or (facts["base_prefix"] == sys.base_prefix and facts["prefix"] == sys.prefix)
    venv = facts["prefix"] != facts["base_prefix"] and facts["stdlib"].startswith(facts["base_prefix"])
    numpy = bool(facts["numpy"]) and facts["numpy"].startswith(facts["prefix"])
    numpy = numpy and facts["ld_cache"] == "allowed"  # the loader's cache readable: system libraries as on the host
    detail = f"base_prefix {facts['base_prefix']}, prefix {facts['prefix']}, numpy {facts['numpy']}"
    detail += f", /etc/ld.so.cache {facts['ld_cache']}"
    return CheckRow("the interpreter's own stdlib and the virtualenv", own and venv and numpy, detail)


def format_table(rows: list[CheckRow]) -> str:
    """The rows as a plain-text table, failures marked FAIL."""
    width = max(len(row.name) for row in rows)
    lines = [f"{'check':{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{row.name:{width}}  {'ok' if row.ok else 'FAIL':6}  {row.detail}" for row in rows]
    return "\n".join(lines)


def run_gpu_checks(
    backend_name: str,
    gpus: list[Gpu],
    *,
    uid: int = BASE_UID,
    work_dir: Path | None = None,
    options: dict | None = None,
    libcuda: Path | None = None,
) -> list[CheckRow]:
    """For each GPU: what nvidia-smi says, and a probe through the sandbox on it (only its own node, one device).

    ``libcuda``: a file the probe loads as the CUDA driver instead of the system's ``libcuda.so.1`` (tests).
    """
    rows = []
    for gpu in gpus:
        rows.append(CheckRow(f"GPU {gpu.index}", True, f"{gpu.summary()}, /dev/{gpu.device_node}"))
        try:
            facts, result = probe_gpu(
                backend_name, gpu.index, uid=uid, work_dir=work_dir, options=options, libcuda=libcuda
            )
        except SandboxUnavailable as error:  # e.g. another process still holds the GPU
            rows.append(CheckRow(f"GPU {gpu.index}: a job sees only its own", False, str(error)))
            continue
        rows += judge_gpu(gpu, facts, result)
    return rows


def probe_gpu(
    backend_name: str,
    gpu: int,
    *,
    uid: int = BASE_UID,
    work_dir: Path | None = None,
    options: dict | None = None,
    libcuda: Path | None = None,
) -> tuple[dict, SandboxResult]:
    """Run the GPU probe as a job on ``gpu``; returns its facts ({} if it wrote none) and the run's result."""
    backend = get_sandbox(backend_name, **(options or {}))
    with _probe_folders(work_dir, uid) as folders:
        spec = {"libcuda": None}
        if libcuda is not None:  # handed to the job with its public data, read-only
            shutil.copyfile(libcuda, folders["public"] / "libcuda.so.1")
            spec["libcuda"] = "/data/libcuda.so.1"
        job = SandboxJob(
            folders["job"] / "code", folders["job"] / "out", folders["public"], spec, GPU_LIMITS, uid=uid, gpu=gpu
        )
        try:
            result = backend.run_program(job, GPU_PROBE)
            raw = read_untrusted(job.out_dir, "gpu.json", 64 * 1024)
        finally:
            backend.release(job)
    return (json.loads(raw) if raw else {}), result


def judge_gpu(gpu: Gpu, facts: dict, result: SandboxResult) -> list[CheckRow]:
    """Rows for one GPU's probe: the job saw and opened its own node only, and the driver counted one device."""
    name = f"GPU {gpu.index}: a job sees only its own"
    if not facts:
        return [CheckRow(name, False, f"no facts came back (exit {result.exit_code}): {result.log[-400:]}")]
    numbered = [node for node in facts["nodes"] if node[len("nvidia") :].isdigit()]
    own = [gpu.device_node]
    ok = numbered == own and facts["opened"] == own and facts["visible"] == "0"
    opened = facts["opened"] or facts["refused"] or "none"
    detail = f"GPU nodes {numbered}, opened {opened}, CUDA_VISIBLE_DEVICES={facts['visible']}"
    rows = [CheckRow(name, ok, detail)]
    driver = f"GPU {gpu.index}: the CUDA driver counts one device"
    if "libcuda" in facts:
        rows.append(CheckRow(driver, False, f"the driver library cannot be loaded inside: {facts['libcuda']}"))
        return rows
    init, (status, count) = facts["cuInit"], facts["cuDeviceGetCount"]
    detail = f"cuInit {CUDA_ERRORS.get(init, init)}, cuDeviceGetCount {CUDA_ERRORS.get(status, status)}: {count}"
    rows.append(CheckRow(driver, init == 0 and status == 0 and count == 1, detail))
    return rows
