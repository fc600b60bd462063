"""Writable file systems of a job: size- and inode-capped tmpfs mounted on the host, and stale ones removed."""

from __future__ import annotations

import ctypes
import errno
import os
import re
from pathlib import Path

from grader.sandbox.host import pid_alive
from grader.sandbox.layout import INSIDE_OUT
from grader.sandbox.limits import SandboxJob, SandboxUnavailable

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
