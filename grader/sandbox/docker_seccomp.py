"""The Docker backend's seccomp profile: the bwrap filter's policy (grader/sandbox/seccomp.py) in Docker's JSON.

Docker's default profile allows ``ptrace`` (kernels >= 4.8) and, in the 20.10 releases, ``io_uring``; jobs get
this profile instead: every call of ``SyscallTable.denied`` fails with EPERM, ``clone``/``unshare`` with
CLONE_NEWUSER too, ``clone3`` with ENOSYS (glibc falls back to ``clone``, whose flags the filter reads), and only
the native architecture is allowed (a 32-bit ``int 0x80`` call kills the process, as libseccomp's filter does for
any other architecture).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from grader.sandbox.seccomp import CLONE_NEWUSER, syscall_table

ARCHITECTURES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def docker_seccomp_profile(machine: str | None = None) -> dict:
    """The profile as Docker's ``--security-opt seccomp=FILE`` reads it (runc/libseccomp names)."""
    machine = machine or os.uname().machine
    table = syscall_table(machine)
    newuser = [{"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}]
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [ARCHITECTURES[machine]],
        "syscalls": [
            {"names": sorted(table.denied), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
            {"names": ["clone", "unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM, "args": newuser},
        ],
    }


def write_docker_seccomp_profile(folder: Path) -> Path:
    """The profile as a file in ``folder`` (the docker client reads it and sends it to the daemon)."""
    path = folder / "seccomp.json"
    path.write_text(json.dumps(docker_seccomp_profile()), encoding="utf-8")
    return path
