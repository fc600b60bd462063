"""Sandbox backends: command lines, seccomp, GPU slots, sweeping, self-check, and bwrap for real (loopback only)."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import platform
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.data import dataset_paths
from grader.grading import GradingSettings, grade
from grader.sandbox import (
    HARNESS,
    INSIDE_CODE,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_OUT,
    INSIDE_WEIGHTS,
    SANDBOXES,
    BwrapSandbox,
    DockerSandbox,
    Limits,
    SandboxJob,
    SandboxUnavailable,
    bwrap_argv,
    docker_argv,
    get_sandbox,
    gpu_holders,
    processes_of_uid,
    sweep_uid,
    unmount_stale_scratch,
)
from grader.sandbox.cgroups import JobCgroup
from grader.sandbox.check import format_table, judge, probe_sandbox, run_sandbox_check
from grader.sandbox.seccomp import TABLES, UnsupportedArchitecture, build_filter, syscall_table
from server.catalog import catalog

pytestmark = [pytest.mark.sandbox]

PROBE = """
import json, os, socket, sys

def attempt(action):
    try:
        action()
        return "allowed"
    except Exception as error:
        return type(error).__name__

def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as conn:
        conn.sendall(b"hello from the sandbox")

def write(path):
    def action():
        with open(path, "w") as handle:
            handle.write("x")
    return action

facts = {
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "base_prefix": sys.base_prefix,
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "connect_host": attempt(connect),
    "write_code": attempt(write("/job/code/submission.py")),
    "write_data": attempt(write("/data/train.csv")),
    "write_usr": attempt(write("/usr/evil")),
    "write_tmp": attempt(write("/tmp/ok")),
    "env": sorted(os.environ),
    "proc1_env": attempt(lambda: open("/proc/1/environ", "rb").read()),
    "data_files": sorted(os.listdir("/data")),
    "root_files": sorted(os.listdir("/")),
    "test_header": open("/data/test.csv").readline().strip(),
}
print("FACTS " + json.dumps(facts), flush=True)

def train(data):
    raise SystemExit("probe done")
"""


@pytest.fixture
def listener():
    """A TCP listener on the host's loopback that must hear nothing from the sandbox."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def heard_anything(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


@pytest.mark.slow  # about 8 s
def test_the_job_is_isolated(app, data_dir, tmp_path, listener, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SECRET_KEY", "must-not-leak")
    code = PROBE.replace("PORT", str(listener.getsockname()[1]))
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path)
    result = grade(code, exercise, dataset_paths(data_dir, "synthetic"), settings, uid=61050)
    line = next(line for line in result.log.splitlines() if line.startswith("FACTS "))
    facts = json.loads(line[len("FACTS ") :])

    assert facts["uid"] == 61050 and facts["gid"] == 61050 and facts["groups"] == []
    assert facts["interfaces"] == ["lo"]
    assert facts["connect_host"] != "allowed" and not heard_anything(listener)
    assert facts["write_code"] != "allowed" and facts["write_data"] != "allowed" and facts["write_usr"] != "allowed"
    assert facts["write_tmp"] == "allowed"
    assert "WORKSHOP_SECRET_KEY" not in facts["env"] and not any(key.startswith("WORKSHOP") for key in facts["env"])
    assert facts["proc1_env"] != "allowed" or "must-not-leak" not in line
    assert "private" not in facts["root_files"] and "test_labels.csv" not in facts["data_files"]
    assert facts["test_header"] == "image_id"
    assert facts["base_prefix"] == sys.base_prefix  # the interpreter's own standard library, not a fallback
    assert result.status == "failed" and result.error_kind == "runtime_error"
    assert "probe done" in result.message


# --- the command lines, built as pure functions -------------------------------------------------------


def _job(tmp_path, **changes) -> SandboxJob:
    fields = {
        "code_dir": tmp_path / "job" / "code",
        "out_dir": tmp_path / "job" / "out",
        "data_dir": tmp_path / "data" / "public",
        "spec": {},
        "limits": Limits(),
        "uid": 61005,
    }
    return SandboxJob(**(fields | changes))


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == flag]


def test_bwrap_binds_capped_scratch_and_loads_the_filter(tmp_path):
    job = _job(tmp_path)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc", seccomp_fd=7)
    binds = dict((inside, host) for host, inside in _pairs(argv, "--bind"))
    assert binds == {
        "/tmp": str(tmp_path / "job" / "tmp"),
        "/dev/shm": str(tmp_path / "job" / "shm"),
        INSIDE_OUT: str(tmp_path / "job" / "out"),
    }
    assert "--tmpfs" not in argv, "bwrap 0.8 cannot cap a --tmpfs; scratch space is mounted capped on the host"
    assert argv[argv.index("--seccomp") + 1] == "7"
    assert argv.index("--seccomp") < argv.index("setpriv")
    etc = argv.index("/etc")  # made world-readable first, or the job could not read the loader's cache
    assert argv[etc - 3 : etc] == ["--perms", "0755", "--dir"] and etc < argv.index("/etc/ld.so.cache")
    assert "--dev-bind" not in argv and "--share-net" not in argv
    assert argv[-4:] == ["-I", "-B", INSIDE_HARNESS, "/job/spec.json"]


def _fake_devices(tmp_path: Path, names: list[str]) -> Path:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in names:
        (dev / name).write_text("")
    return dev


def test_a_gpu_job_gets_only_its_own_gpu_and_the_control_nodes(tmp_path):
    dev = _fake_devices(tmp_path, ["nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm", "nvidia-modeset"])
    job = _job(tmp_path, gpu=1)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc", dev_dir=dev)
    assert _pairs(argv, "--dev-bind") == [
        (str(dev / "nvidia1"), "/dev/nvidia1"),
        (str(dev / "nvidiactl"), "/dev/nvidiactl"),
        (str(dev / "nvidia-uvm"), "/dev/nvidia-uvm"),
    ]
    env = dict(_pairs(argv, "--setenv"))
    assert env["CUDA_VISIBLE_DEVICES"] == "0"  # the only GPU the job can open is its device 0


def test_a_gpu_job_without_its_device_node_is_refused(tmp_path):
    dev = _fake_devices(tmp_path, ["nvidia0", "nvidiactl"])
    with pytest.raises(SandboxUnavailable, match="no device node"):
        bwrap_argv(_job(tmp_path, gpu=3), tmp_path / "spec.json", tmp_path / "etc", dev_dir=dev)


def test_cpu_jobs_see_no_gpu(tmp_path):
    env = dict(_pairs(bwrap_argv(_job(tmp_path), tmp_path / "spec.json", tmp_path / "etc"), "--setenv"))
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def _fake_proc(tmp_path: Path, links: dict[int, str]) -> Path:
    proc = tmp_path / "proc"
    for pid, target in links.items():
        (proc / str(pid) / "fd").mkdir(parents=True)
        os.symlink(target, proc / str(pid) / "fd" / "3")
        (proc / str(pid) / "status").write_text("Name:\tx\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\n")
    (proc / "self").mkdir(parents=True, exist_ok=True)
    return proc


def _stub_nvidia_smi(tmp_path: Path, monkeypatch, script: str) -> Path:
    """Put a fake ``nvidia-smi`` (a shell ``script`` that logs its arguments) first on PATH; returns the log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "nvidia-smi.log"
    stub = bin_dir / "nvidia-smi"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{script}\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_gpu_holders_are_found_through_proc_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here, even on a host that has one
    proc = _fake_proc(tmp_path, {101: "/dev/nvidia1", 102: "/dev/nvidia10", 103: "/dev/null", 104: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101, 104]
    assert gpu_holders(2, proc=proc) == []


def test_gpu_holders_add_the_compute_apps_nvidia_smi_lists(tmp_path, monkeypatch):
    log = _stub_nvidia_smi(tmp_path, monkeypatch, 'case "$4" in 1) printf "555\\n104\\n" ;; esac')
    proc = _fake_proc(tmp_path, {101: "/dev/nvidia1", 104: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101, 104, 555]
    assert gpu_holders(2, proc=proc) == []
    assert log.read_text().splitlines() == [
        "--query-compute-apps=pid --format=csv,noheader -i 1",
        "--query-compute-apps=pid --format=csv,noheader -i 2",
    ]


def test_gpu_holders_ignore_a_failing_nvidia_smi(tmp_path, monkeypatch):
    log = _stub_nvidia_smi(tmp_path, monkeypatch, 'echo "555"; echo "NVIDIA-SMI has failed" >&2; exit 9')
    proc = _fake_proc(tmp_path, {101: "/dev/nvidia1"})
    assert gpu_holders(1, proc=proc) == [101]
    assert log.read_text() != ""


def test_a_gpu_still_held_is_not_given_to_the_next_job(tmp_path, monkeypatch):
    _stub_nvidia_smi(tmp_path, monkeypatch, "")  # a real GPU's compute apps must not count here
    dev = _fake_devices(tmp_path, ["nvidia0", "nvidiactl"])
    proc = _fake_proc(tmp_path, {4242: str(dev / "nvidia0")})
    sandbox = BwrapSandbox(dev_dir=dev, proc=proc, gpu_release_seconds=0.2)
    job = _job(tmp_path, gpu=0)
    with pytest.raises(SandboxUnavailable, match=r"GPU 0 is still held by processes \[4242\]"):
        sandbox.run_program(job, HARNESS)


def test_a_gpu_job_runs_with_exactly_its_device_nodes(tmp_path, data_dir, monkeypatch):
    """Fake device files stand in for the nodes: the job sees its own GPU's node and the control nodes only."""
    _stub_nvidia_smi(tmp_path, monkeypatch, "")  # a real GPU's compute apps must not hold this job back
    dev = _fake_devices(tmp_path, ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"])
    program = tmp_path / "list_devices.py"
    program.write_text(
        "import json, os\n"
        "print('DEVICES ' + json.dumps([sorted(os.listdir('/dev')), os.environ['CUDA_VISIBLE_DEVICES']]))\n"
    )
    program.chmod(0o644)
    job = _prepared_job(tmp_path, data_dir, gpu=1)
    sandbox = BwrapSandbox(dev_dir=dev, gpu_release_seconds=0.2)
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    line = next(line for line in result.log.splitlines() if line.startswith("DEVICES "))
    devices, visible = json.loads(line[len("DEVICES ") :])
    assert [name for name in devices if name.startswith("nvidia")] == ["nvidia-uvm", "nvidia1", "nvidiactl"]
    assert visible == "0"


def _prepared_job(tmp_path: Path, data_dir: Path, limits: Limits | None = None, **changes) -> SandboxJob:
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


def test_docker_command_isolates_the_job(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    job = _job(tmp_path, gpu=2, weights_dir=weights, limits=Limits(memory_mb=2048, max_processes=256, tmp_mb=512))
    argv = docker_argv(job, tmp_path / "spec.json", image="workshop-server:test", name="job-1")
    assert argv[:3] == ["docker", "run", "--rm"]
    pairs = dict(_pairs_single(argv))
    assert pairs["--network"] == "none" and pairs["--cap-drop"] == "ALL"
    assert pairs["--security-opt"] == "no-new-privileges" and "--read-only" in argv
    assert pairs["--pids-limit"] == "256" and pairs["--memory"] == "2048m" and pairs["--memory-swap"] == "2048m"
    assert pairs["--user"] == "61005:61005" and pairs["--gpus"] == "device=2" and pairs["--pull"] == "never"
    assert pairs["--tmpfs"].startswith("/tmp:") and "size=512m" in pairs["--tmpfs"]
    assert pairs["--entrypoint"] == "/app/.venv/bin/python"
    mounts = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--mount"]
    assert mounts == [
        f"type=bind,source={job.code_dir},target={INSIDE_CODE},readonly",
        f"type=bind,source={tmp_path / 'spec.json'},target=/job/spec.json,readonly",
        f"type=bind,source={job.data_dir},target={INSIDE_DATA},readonly",
        f"type=bind,source={job.out_dir},target={INSIDE_OUT}",
        f"type=bind,source={HARNESS},target={INSIDE_HARNESS},readonly",
        f"type=bind,source={weights},target={INSIDE_WEIGHTS},readonly",
    ]
    env = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--env"]
    assert "CUDA_VISIBLE_DEVICES=0" in env and not any("WORKSHOP" in item for item in env)
    assert argv[argv.index("workshop-server:test") :] == [
        "workshop-server:test",
        "-I",
        "-B",
        INSIDE_HARNESS,
        "/job/spec.json",
    ]


def _pairs_single(argv: list[str]) -> list[tuple[str, str]]:
    return [(arg, argv[i + 1]) for i, arg in enumerate(argv[:-1]) if arg.startswith("--")]


def test_docker_cpu_job_has_no_gpu_flag(tmp_path):
    argv = docker_argv(_job(tmp_path), tmp_path / "spec.json")
    assert "--gpus" not in argv and argv[argv.index("--network") + 1] == "none"


def test_registry_names_every_backend_and_passes_options():
    assert set(SANDBOXES) == {"bwrap", "docker", "none"}
    assert get_sandbox("docker", image="registry.example/workshop:7").image == "registry.example/workshop:7"
    with pytest.raises(SandboxUnavailable, match="unknown sandbox"):
        get_sandbox("chroot")


def test_docker_backend_says_what_is_missing(tmp_path):
    with pytest.raises(SandboxUnavailable, match="not installed"):
        DockerSandbox(docker=str(tmp_path / "no-docker-here")).check_available()


# --- seccomp, tested on the host without bubblewrap ------------------------------------------------------


def _run_filtered(program: bytes, calls: list[tuple[int, ...]]) -> list[str]:
    """Install ``program`` in a forked child (no_new_privs + seccomp), make ``calls`` there, return the errnos."""
    import ctypes

    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(reader)
        libc = ctypes.CDLL(None, use_errno=True)
        buffer = ctypes.create_string_buffer(program, len(program))

        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = Program(len(program) // 8, ctypes.addressof(buffer))
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        outcomes = []
        if libc.syscall(317, 1, 0, ctypes.byref(fprog)) != 0:  # seccomp(SECCOMP_SET_MODE_FILTER)
            outcomes.append("filter not loaded")
        for number, *args in calls:
            ctypes.set_errno(0)
            result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(arg) for arg in args])
            if result == 0 and number == 56:
                os._exit(0)
            outcomes.append("ok" if result >= 0 else errno.errorcode[ctypes.get_errno()])
        os.write(writer, json.dumps(outcomes).encode())
        os._exit(0)
    os.close(writer)
    data = b"".join(iter(lambda: os.read(reader, 65536), b""))
    os.waitpid(child, 0)
    os.close(reader)
    return json.loads(data)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the syscall numbers below are x86_64's")
def test_the_filter_denies_the_listed_calls_and_lets_the_rest_through():
    outcomes = _run_filtered(
        build_filter(),
        [
            (250, 0, -3, 0),  # keyctl(KEYCTL_GET_KEYRING_ID): allowed for anyone without the filter
            (425, 1, 0),  # io_uring_setup
            (101, 0, 0, 0, 0),  # ptrace(PTRACE_TRACEME)
            (272, 0x10000000),  # unshare(CLONE_NEWUSER)
            (56, 0x10000000 | 17, 0, 0, 0, 0),  # clone(CLONE_NEWUSER | SIGCHLD)
            (435, 0, 0),  # clone3
            (0x40000000 | 39,),  # getpid through x32
            (39,),  # getpid
            (102,),  # getuid
        ],
    )
    assert outcomes == ["EPERM", "EPERM", "EPERM", "EPERM", "EPERM", "ENOSYS", "EPERM", "ok", "ok"]


def test_the_filter_is_well_formed_for_every_architecture():
    for machine, table in TABLES.items():
        program = build_filter(table)
        assert len(program) % 8 == 0 and len(program) // 8 < 256, machine
        first = struct.unpack("=HBBI", program[:8])
        assert first == (0x20, 0, 0, 4), "the architecture is checked before anything else"
        assert {"keyctl", "bpf", "userfaultfd", "io_uring_setup", "ptrace", "mount", "setns"} <= set(table.denied)
    with pytest.raises(UnsupportedArchitecture):
        syscall_table("riscv64")


# --- processes, cgroups, the self-check ------------------------------------------------------------------


def test_sweep_kills_every_process_of_the_uid(tmp_path):
    sleepers = [
        subprocess.Popen(["setpriv", "--reuid=61099", "--regid=61099", "--clear-groups", "setsid", "sleep", "300"])
        for _ in range(3)
    ]
    deadline = time.monotonic() + 5
    while len(processes_of_uid(61099)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sweep_uid(61099)) >= 3
    assert processes_of_uid(61099) == []
    for sleeper in sleepers:
        sleeper.wait(timeout=5)
    with pytest.raises(ValueError, match="not a sandbox uid"):
        sweep_uid(0)


def test_cgroup_holds_the_cpu_quota():
    cgroup = JobCgroup.create(f"test-{os.getpid()}", Limits(cpus=0.5, memory_mb=300, max_processes=20))
    assert cgroup is not None, "this host has writable cgroups; the sandbox needs them"
    try:
        facts = cgroup.describe()
        assert facts["memory"] in (str(300 * 2**20), "314572800") and facts["pids"] == "20"
        assert facts.get("cpu_quota_us", "50000 100000").split()[0] == "50000"
    finally:
        cgroup.cleanup()


def test_a_cpu_quota_slows_a_spinning_job(tmp_path, data_dir):
    program = tmp_path / "spin.py"
    program.write_text(
        "import os, threading, time\n"
        "def spin():\n"
        "    end = time.monotonic() + 2\n"
        "    while time.monotonic() < end: pass\n"
        "threads = [threading.Thread(target=spin) for _ in range(2)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print('CPU', sum(os.times()[:2]))\n"
    )
    program.chmod(0o644)
    job = _prepared_job(tmp_path, data_dir, limits=Limits(wall_seconds=30, cpus=0.5))
    sandbox = BwrapSandbox()
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    cpu = float(next(line for line in result.log.splitlines() if line.startswith("CPU ")).split()[1])
    assert cpu < 1.5, f"two threads spinning 2 s under half a core used {cpu} CPU seconds"


def test_self_check_passes_on_this_host():
    rows = run_sandbox_check("bwrap", uid=61051)
    assert all(row.ok for row in rows), format_table(rows)
    assert len(rows) >= 10


def test_self_check_fails_when_a_fact_is_wrong():
    """The judge is not a rubber stamp: a leak in any one fact fails the table."""
    outcome = probe_sandbox("bwrap", uid=61051)
    assert all(row.ok for row in judge(outcome))
    facts = outcome.facts
    doctored = [
        {"network": {**facts["network"], "interfaces": ["eth0", "lo"]}},
        {"seccomp_mode": "0"},
        {"caps": {**facts["caps"], "CapEff": "00000000a80425fb"}},
        {"labels_found": ["/data/test_labels.csv"]},
        {"env": [*facts["env"], "WORKSHOP_SECRET_KEY"]},
        {"base_prefix": "/usr"},
        {"memory": "allocated twice the limit"},
        {"writes": {**facts["writes"], "/usr/x": "allowed"}},
    ]
    for change in doctored:
        assert not all(row.ok for row in judge(dataclasses.replace(outcome, facts={**facts, **change}))), change
    assert not all(row.ok for row in judge(dataclasses.replace(outcome, heard=["tcp4"])))
    assert not all(row.ok for row in judge(dataclasses.replace(outcome, leftovers=[4242])))


def test_self_check_refuses_the_none_backend():
    rows = run_sandbox_check("none")
    assert [row.ok for row in rows] == [False] and "without any isolation" in rows[0].detail


def test_cli_sandbox_check_prints_the_table(runner):
    result = runner.invoke(args=["sandbox", "check"])
    assert result.exit_code == 0, result.output
    assert "seccomp filter active" in result.output and "FAIL" not in result.output


def test_cli_sandbox_check_exits_1_when_isolation_is_missing(app, runner):
    app.config["SANDBOX"] = "none"
    result = runner.invoke(args=["sandbox", "check"])
    assert result.exit_code == 1 and "FAIL" in result.output


def test_workers_refuse_to_start_where_isolation_is_missing(app):
    from server.executor_runtime import build_executor

    app.config.update(SANDBOX="docker", DOCKER_IMAGE="workshop-no-such-image:never")
    with pytest.raises(SandboxUnavailable, match="does not isolate jobs on this host"):
        build_executor(app, slots=1)


def test_workers_start_without_isolation_only_with_a_loud_warning(app, capfd):
    from server.executor_runtime import build_executor

    app.config["SANDBOX"] = "none"
    build_executor(app, slots=1)
    assert "WITHOUT ANY ISOLATION" in capfd.readouterr().err


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_scratch_mounts_of_a_dead_worker_are_unmounted(tmp_path):
    import ctypes

    target = tmp_path / "job with space" / "tmp"
    target.mkdir(parents=True)
    source = f"workshop-job-{_dead_pid()}".encode()
    assert ctypes.CDLL(None).mount(source, bytes(target), b"tmpfs", 0, b"size=1m") == 0
    assert os.path.ismount(target)
    assert str(target) in unmount_stale_scratch()
    assert not os.path.ismount(target)


def test_cgroups_of_a_dead_worker_are_removed():
    name = f"job-61111-{_dead_pid()}-1"
    stale = JobCgroup.create(name, Limits())
    assert stale is not None
    removed = JobCgroup.remove_stale()
    assert {folder.name for folder in removed} == {name}
    assert not any(folder.exists() for folder in stale.folders.values())
