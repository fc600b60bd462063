"""The ``docker`` backend, for self-hosted GPU servers: the same job in a locked-down container."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from grader.sandbox.base import IsolatedSandbox
from grader.sandbox.docker_seccomp import write_docker_seccomp_profile
from grader.sandbox.layout import (
    HARNESS,
    INSIDE_CODE,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_OUT,
    INSIDE_SPEC,
    INSIDE_WEIGHTS,
    inside_spec,
    sandbox_environment,
    write_spec,
)
from grader.sandbox.limits import SandboxJob, SandboxResult, SandboxUnavailable, job_cpus
from grader.sandbox.process import run_contained

DEFAULT_DOCKER_IMAGE = "workshop-server:latest"
DOCKER_PYTHON = "/app/.venv/bin/python"
CONTAINER_PREFIX = "workshop-job-"  # then the job's uid, a dash and a random hex suffix
JOB_LABEL, UID_LABEL, HOST_LABEL = "workshop.job", "workshop.uid", "workshop.host"


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
        # the daemon resolves bind sources on its host: a worker in a container binds a copy in the job folder
        # (a path shared with the host), not its own /app/grader/harness.py
        shared_program = job.job_dir / "program.py"
        shutil.copyfile(program, shared_program)
        name = f"{CONTAINER_PREFIX}{job.uid}-{uuid.uuid4().hex[:12]}"
        seccomp = write_docker_seccomp_profile(job.job_dir)  # ours, not Docker's default: see docker_seccomp.py
        argv = docker_argv(
            job, spec_path, image=self.image, name=name, docker=self.docker, python=self.python, program=shared_program
        )
        argv[argv.index("--cap-drop") : argv.index("--cap-drop")] = ["--security-opt", f"seccomp={seccomp}"]
        try:
            result = run_contained(argv, self._environment(), job.limits, None, on_poll, rlimits=False)
        finally:  # killing the client does not stop the container: remove it by name, whatever happened
            self._docker("rm", "--force", name)
        notes = list(result.notes)
        if removed:
            notes.append(f"removed {len(removed)} container(s) of this slot that a stopped worker left running")
        return replace(
            result,
            # docker reports a kill by its memory cgroup as exit status 137 (128 + SIGKILL)
            out_of_memory=result.out_of_memory or (result.exit_code == 137 and not result.timed_out),
            containment={**result.containment, "seccomp": "workshop profile (docker_seccomp.py)", "uid": job.uid},
            notes=notes,
        )

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
