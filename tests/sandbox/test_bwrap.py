"""The bubblewrap backend: its command line (binds, filter, GPU nodes) and a real job's isolation (loopback only)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from sandbox_jobs import arg_pairs, fake_devices, fake_proc, make_job, prepared_job, stub_nvidia_smi

from grader.data import dataset_paths
from grader.grading import GradingSettings, grade
from grader.sandbox import (
    HARNESS,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_OUT,
    BwrapSandbox,
    Limits,
    SandboxJob,
    SandboxUnavailable,
    bwrap_argv,
)
from server.catalog import catalog

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
@pytest.mark.sandbox
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


# --- the command line, built as a pure function -----------------------------------------------------------------------


@pytest.mark.sandbox
def test_bwrap_binds_capped_scratch_and_loads_the_filter(tmp_path):
    job = make_job(tmp_path)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc", seccomp_fd=7)
    binds = dict((inside, host) for host, inside in arg_pairs(argv, "--bind"))
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


def test_bwrap_command_isolates_the_job(tmp_path):
    job = SandboxJob(tmp_path / "code", tmp_path / "out", tmp_path / "data" / "public", {}, Limits(), uid=61005)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc")
    joined = " ".join(argv)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert flag in argv
    assert "--new-session" in argv and "--clearenv" in argv
    assert f"--ro-bind {tmp_path / 'data' / 'public'} {INSIDE_DATA}" in joined
    assert f"--bind {tmp_path / 'out'} {INSIDE_OUT}" in joined
    assert "private" not in joined
    assert "--reuid=61005" in argv and "--no-new-privs" in argv and "--bounding-set=-all" in argv
    # the interpreter's own installation is bound at its own path, with world-readable parents
    assert f"--ro-bind {Path(sys.base_prefix).resolve()} {Path(sys.base_prefix).resolve()}" in joined
    env = {argv[i + 1]: argv[i + 2] for i, arg in enumerate(argv) if arg == "--setenv"}
    assert "SECRET_KEY" not in " ".join(env) and "WORKSHOP" not in " ".join(env)
    assert env["HOME"] == "/tmp"


def test_the_interpreter_is_bound_after_tmp_so_a_checkout_under_tmp_works(tmp_path):
    job = SandboxJob(tmp_path / "code", tmp_path / "out", tmp_path / "data", {}, Limits(), uid=61005)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc")
    tmp_bind = next(i for i, arg in enumerate(argv) if arg == "/tmp" and argv[i - 2] == "--bind")
    prefix = str(Path(sys.prefix).resolve())
    venv_bind = max(i for i, arg in enumerate(argv) if arg == prefix)
    assert venv_bind > tmp_bind


# --- GPUs: only the job's own device node -----------------------------------------------------------------------------


@pytest.mark.sandbox
def test_a_gpu_job_gets_only_its_own_gpu_and_the_control_nodes(tmp_path):
    dev = fake_devices(tmp_path, ["nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm", "nvidia-modeset"])
    job = make_job(tmp_path, gpu=1)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc", dev_dir=dev)
    assert arg_pairs(argv, "--dev-bind") == [
        (str(dev / "nvidia1"), "/dev/nvidia1"),
        (str(dev / "nvidiactl"), "/dev/nvidiactl"),
        (str(dev / "nvidia-uvm"), "/dev/nvidia-uvm"),
    ]
    env = dict(arg_pairs(argv, "--setenv"))
    assert env["CUDA_VISIBLE_DEVICES"] == "0"  # the only GPU the job can open is its device 0


@pytest.mark.sandbox
def test_a_gpu_job_without_its_device_node_is_refused(tmp_path):
    dev = fake_devices(tmp_path, ["nvidia0", "nvidiactl"])
    with pytest.raises(SandboxUnavailable, match="no device node"):
        bwrap_argv(make_job(tmp_path, gpu=3), tmp_path / "spec.json", tmp_path / "etc", dev_dir=dev)


@pytest.mark.sandbox
def test_cpu_jobs_see_no_gpu(tmp_path):
    env = dict(arg_pairs(bwrap_argv(make_job(tmp_path), tmp_path / "spec.json", tmp_path / "etc"), "--setenv"))
    assert env["CUDA_VISIBLE_DEVICES"] == ""


@pytest.mark.sandbox
def test_a_gpu_still_held_is_not_given_to_the_next_job(tmp_path, monkeypatch):
    stub_nvidia_smi(tmp_path, monkeypatch, "")  # a real GPU's compute apps must not count here
    dev = fake_devices(tmp_path, ["nvidia0", "nvidiactl"])
    proc = fake_proc(tmp_path, {4242: str(dev / "nvidia0")})
    sandbox = BwrapSandbox(dev_dir=dev, proc=proc, gpu_release_seconds=0.2)
    job = make_job(tmp_path, gpu=0)
    with pytest.raises(SandboxUnavailable, match=r"GPU 0 is still held by processes \[4242\]"):
        sandbox.run_program(job, HARNESS)


@pytest.mark.sandbox
def test_a_gpu_job_runs_with_exactly_its_device_nodes(tmp_path, data_dir, monkeypatch):
    """Fake device files stand in for the nodes: the job sees its own GPU's node and the control nodes only."""
    stub_nvidia_smi(tmp_path, monkeypatch, "")  # a real GPU's compute apps must not hold this job back
    dev = fake_devices(tmp_path, ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"])
    program = tmp_path / "list_devices.py"
    program.write_text(
        "import json, os\n"
        "print('DEVICES ' + json.dumps([sorted(os.listdir('/dev')), os.environ['CUDA_VISIBLE_DEVICES']]))\n"
    )
    program.chmod(0o644)
    job = prepared_job(tmp_path, data_dir, gpu=1)
    sandbox = BwrapSandbox(dev_dir=dev, gpu_release_seconds=0.2)
    try:
        result = sandbox.run_program(job, program)
    finally:
        sandbox.release(job)
    line = next(line for line in result.log.splitlines() if line.startswith("DEVICES "))
    devices, visible = json.loads(line[len("DEVICES ") :])
    assert [name for name in devices if name.startswith("nvidia")] == ["nvidia-uvm", "nvidia1", "nvidiactl"]
    assert visible == "0"
