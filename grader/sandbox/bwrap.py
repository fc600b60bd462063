"""The ``bwrap`` backend (default): bubblewrap namespaces, read-only binds, an unprivileged uid, seccomp, cgroups."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from grader.sandbox.base import IsolatedSandbox
from grader.sandbox.cgroups import CGROUP_ROOT, CgroupUnavailable, JobCgroup, cgroup_version
from grader.sandbox.gpus import other_than_slots, other_than_uid
from grader.sandbox.host import gpu_device_nodes, gpu_holders, sweep_uid, wait_for_gpu_release
from grader.sandbox.layout import (
    HARNESS,
    INSIDE_CODE,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_SPEC,
    INSIDE_WEIGHTS,
    inside_spec,
    sandbox_environment,
    write_spec,
)
from grader.sandbox.limits import SandboxJob, SandboxResult, SandboxUnavailable
from grader.sandbox.locks import partner_uid
from grader.sandbox.mounts import mount_scratch, scratch_dirs, unmount, unmount_stale_scratch
from grader.sandbox.process import run_contained
from grader.sandbox.seccomp import filter_fd, memory_file


class BwrapSandbox(IsolatedSandbox):
    """bubblewrap: new namespaces, read-only binds of exactly what the job needs, unprivileged uid, seccomp."""

    name = "bwrap"

    def __init__(
        self,
        dev_dir: Path = Path("/dev"),
        proc: Path = Path("/proc"),
        gpu_release_seconds: float = 15,
        cgroup_root: Path = CGROUP_ROOT,
        gpu_shared: bool = False,
    ):
        self.dev_dir, self.proc, self.gpu_release_seconds = dev_dir, proc, gpu_release_seconds
        self.gpu_shared = gpu_shared  # --slots-per-gpu > 1: other slots' jobs may hold the GPU
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
            self._require_free_gpu(job.gpu, job.uid)
        cgroup = self._job_cgroup(job)  # first: where it cannot be made, nothing else was set up
        try:
            result = self._run_in_cgroup(job, program, on_poll, cgroup)
        finally:
            cgroup.cleanup()  # run_contained removed it already unless the start failed; removing twice is harmless
            leftovers = sweep_uid(job.uid, self.proc)  # the final word: nothing of this uid survives the job
        notes += _sweep_note(leftovers, "after the job")
        if job.gpu is not None and (holders := self._gpu_holders_after_wait(job.gpu, job.uid)):
            notes.append(f"GPU {job.gpu} is still held by processes {holders}; the next job waits for it")
        return replace(
            result,
            notes=[*result.notes, *notes],
            containment={
                **result.containment,
                "seccomp": True,
                "uid": job.uid,
                "scratch_mb": {"tmp": job.limits.tmp_mb},
            },
        )

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

    def _gpu_holders_after_wait(self, gpu: int, uid: int | None = None) -> list[int]:
        """Who holds the GPU after waiting; on a shared GPU (``uid`` given) only this slot's uid and non-jobs count.
        The warm sandbox waiting under the slot's other uid (warm slots) never counts: it is not a job yet."""
        partner = partner_uid(uid)
        if not self.gpu_shared and partner is None:
            return wait_for_gpu_release(gpu, self.gpu_release_seconds, self.proc, self.dev_dir)

        def counted() -> list[int]:
            holders = gpu_holders(gpu, self.proc, self.dev_dir)
            if partner is not None:
                holders = other_than_uid(holders, partner, self.proc)
            return other_than_slots(holders, uid, self.proc) if self.gpu_shared else holders

        deadline = time.monotonic() + self.gpu_release_seconds
        while (holders := counted()) and time.monotonic() < deadline:
            time.sleep(0.25)
        return holders

    def _require_free_gpu(self, gpu: int, uid: int | None = None) -> None:
        """Before a job: the previous one (or anything else) must have let go of the GPU (of its share, when shared)."""
        if holders := self._gpu_holders_after_wait(gpu, uid):
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
