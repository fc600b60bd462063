"""The Docker backend: its command line, and the job containers a killed worker left running.

The command line is built as a pure function. The leftover containers are removed when the slot runs again,
on a real Docker engine: the test starts its own ``dockerd`` (Debian's docker.io, installed by ``make test-deps``)
on a private socket and data folder, without bridge or iptables, and imports a tiny image made from
busybox-static (nothing is pulled). In that image ``/app/.venv/bin/python`` (the backend's entry point) is a
shell script: it sleeps when the job's code folder holds a file named ``sleep``, else it exits at once.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from paths import PROJECT_ROOT
from sandbox_jobs import make_job

from grader.sandbox import (
    HARNESS,
    INSIDE_CODE,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_OUT,
    INSIDE_WEIGHTS,
    DockerSandbox,
    Limits,
    SandboxJob,
    SandboxUnavailable,
    docker_argv,
)

pytestmark = [pytest.mark.sandbox]


def test_docker_command_isolates_the_job(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    job = make_job(tmp_path, gpu=2, weights_dir=weights, limits=Limits(memory_mb=2048, max_processes=256, tmp_mb=512))
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
    argv = docker_argv(make_job(tmp_path), tmp_path / "spec.json")
    assert "--gpus" not in argv and argv[argv.index("--network") + 1] == "none"


def test_docker_backend_says_what_is_missing(tmp_path):
    with pytest.raises(SandboxUnavailable, match="not installed"):
        DockerSandbox(docker=str(tmp_path / "no-docker-here")).check_available()


# --- the containers a killed worker left, on a real Docker engine (slow) ----------------------------------------------

IMAGE = "workshop-test-busybox"
UID = 61980
FAKE_PYTHON = b"""#!/bin/sh
if [ -e /job/code/sleep ]; then exec sleep 600; fi
echo "second job ran"
exit 3
"""
LIMITS = Limits(wall_seconds=60, memory_mb=64, max_processes=32, tmp_mb=8, shm_mb=8)


def _busybox_image() -> bytes:
    """A tar of /bin/busybox (static) with sh and sleep links, and the fake interpreter."""
    busybox = shutil.which("busybox")
    assert busybox, "busybox is missing: `apt-get install busybox-static` (make test-deps does it)"
    binary = Path(busybox).read_bytes()
    assert b"ld-linux" not in binary[:8192], f"{busybox} is dynamically linked: install busybox-static"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def add(name: str, data: bytes | None = None, link: str | None = None, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for folder in ("bin", "tmp", "app", "app/.venv", "app/.venv/bin"):
            add(folder)
        add("bin/busybox", binary)
        add("bin/sh", link="busybox")
        add("bin/sleep", link="busybox")
        add("app/.venv/bin/python", FAKE_PYTHON)
    return buffer.getvalue()


def _docker(*arguments: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=120, check=check, **options)


@pytest.fixture(scope="module")
def docker_engine():
    """A private dockerd (own socket, data, containerd namespace and cgroup parent); yields its DOCKER_HOST."""
    dockerd = shutil.which("dockerd")
    assert dockerd, "dockerd is missing: `apt-get install docker.io` (make test-deps does it)"
    root = Path("/tmp") / f"wsdock-{uuid.uuid4().hex[:8]}"  # noqa: S108 - short: unix socket paths are limited
    root.mkdir(mode=0o700)
    host = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed in the teardown below
    argv = [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false", "--host", host]
    argv += ["--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile", str(root / "pid")]
    argv += ["--containerd-namespace", "workshop-test", "--containerd-plugins-namespace", "workshop-test-plugins"]
    argv += ["--cgroup-parent", "workshop-test-docker"]
    daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    env = {**os.environ, "DOCKER_HOST": host}
    try:
        deadline = time.monotonic() + 60
        while _docker("version", check=False, env=env).returncode != 0:
            assert daemon.poll() is None, (root / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (root / "dockerd.log").read_text()[-3000:]
            time.sleep(0.5)
        imported = subprocess.run(
            ["docker", "import", "-", IMAGE], input=_busybox_image(), capture_output=True, timeout=120, env=env
        )
        assert imported.returncode == 0, imported.stderr
        yield host
    finally:
        leftover = _docker("ps", "--all", "--quiet", check=False, env=env).stdout.split()
        if leftover:
            _docker("rm", "--force", *leftover, check=False, env=env)
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _job(folder: Path, *, sleep: bool) -> SandboxJob:
    for name in ("code", "out", "data"):
        (folder / name).mkdir(parents=True, mode=0o755)
    if sleep:
        (folder / "code" / "sleep").write_text("")
    os.chown(folder / "out", UID, UID)
    return SandboxJob(folder / "code", folder / "out", folder / "data", {}, LIMITS, uid=UID)


WORKER = """
import sys
from pathlib import Path
from grader.sandbox import DockerSandbox, Limits, SandboxJob
code, out, data = (Path(arg) for arg in sys.argv[1:4])
limits = Limits(wall_seconds=60, memory_mb=64, max_processes=32, tmp_mb=8, shm_mb=8)
DockerSandbox(image=sys.argv[5]).run(SandboxJob(code, out, data, {}, limits, uid=int(sys.argv[4])))
"""


def _names(env: dict) -> dict[str, str]:
    listing = _docker("ps", "--all", "--format", "{{.Names}} {{.State}}", env=env).stdout
    return dict(line.split(" ", 1) for line in listing.splitlines())


def _ours(env: dict) -> str | None:
    """The name of this slot's container of the first job, once docker lists it."""
    return next((name for name in _names(env) if name.startswith(f"workshop-job-{UID}-")), None)


def _start_other(name: str, labels: dict[str, str], env: dict) -> None:
    argv = ["run", "--detach", "--network", "none", "--name", name]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    _docker(*argv, IMAGE, "sleep", "600", env=env)


@pytest.mark.slow
def test_a_slot_that_runs_again_removes_the_containers_its_killed_worker_left(docker_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    env = {**os.environ, "DOCKER_HOST": docker_engine}
    first = _job(tmp_path / "first", sleep=True)
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(first.code_dir), str(first.out_dir), str(first.data_dir), str(UID), IMAGE],
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while _names(env).get(_ours(env)) != "running":
            assert worker.poll() is None and time.monotonic() < deadline, "the first job's container never started"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGKILL)  # the worker dies; docker keeps its container running
        worker.wait()
    left = [name for name in _names(env) if name.startswith(f"workshop-job-{UID}-")]
    assert len(left) == 1 and _names(env)[left[0]] == "running", _names(env)

    ours = {"workshop.job": "1", "workshop.uid": str(UID), "workshop.host": os.uname().nodename}
    others = [  # (name, labels) of containers that are not this slot's: they must survive its clean-up
        (f"workshop-job-{UID + 1}-{uuid.uuid4().hex[:12]}", {**ours, "workshop.uid": str(UID + 1)}),
        (f"workshop-job-{UID}0-{uuid.uuid4().hex[:12]}", {**ours, "workshop.uid": f"{UID}0"}),
        (f"workshop-job-{UID}-{uuid.uuid4().hex[:12]}", {}),  # our name pattern, not our labels: not ours
        (f"workshop-job-{UID}-{uuid.uuid4().hex[:12]}", {**ours, "workshop.host": "another-worker"}),
        (f"x-workshop-job-{UID}-{uuid.uuid4().hex[:12]}", ours),  # the name is anchored
    ]
    for name, labels in others:
        _start_other(name, labels, env)

    result = DockerSandbox(image=IMAGE).run(_job(tmp_path / "second", sleep=False))  # the slot runs its next job

    assert "second job ran" in result.log and result.exit_code == 3, result
    after = _names(env)
    assert left[0] not in after, f"the killed worker's container is still there: {after}"
    assert all(after.get(name) == "running" for name, _labels in others), after
    assert set(after) == {name for name, _labels in others}, f"the second job's own container stayed: {after}"
    assert any("left running" in note for note in result.notes), result.notes


@pytest.mark.slow
def test_a_starting_slot_removes_its_uids_leftovers_before_any_job(docker_engine, app, monkeypatch):
    """`workshop worker` started again after a SIGKILL: its slot cleans up at once, even with an empty queue."""
    from grader.executor import ExecutorSettings, LocalExecutor
    from grader.sandbox.locks import SlotLock
    from server.executor_runtime import prepare_slot
    from server.job_store import DatabaseJobStore

    monkeypatch.setenv("DOCKER_HOST", docker_engine)
    env = {**os.environ, "DOCKER_HOST": docker_engine}
    probe = SlotLock()
    uid = probe.acquire()  # the uid the slot will get (the first free one)
    probe.release()
    labels = {"workshop.job": "1", "workshop.uid": str(uid), "workshop.host": os.uname().nodename}
    leftover = f"workshop-job-{uid}-{uuid.uuid4().hex[:12]}"
    _start_other(leftover, labels, env)
    app.config.update(SANDBOX="docker", DOCKER_IMAGE=IMAGE)

    def never_called(*_args):
        raise AssertionError("the queue is empty: no job may run")

    executor = LocalExecutor(
        DatabaseJobStore(app),
        never_called,
        ExecutorSettings(idle_poll_seconds=0.2),
        lambda slot_uid: prepare_slot(app, slot_uid),
    )
    executor.start()
    try:
        deadline = time.monotonic() + 60
        while leftover in _names(env):
            assert time.monotonic() < deadline, f"the starting slot left {leftover} running"
            time.sleep(0.2)
    finally:
        executor.stop()
