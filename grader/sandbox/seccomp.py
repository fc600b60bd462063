"""A seccomp filter (classic BPF, built here without dependencies) that bwrap loads with ``--seccomp FD``.

The filter is a denylist on top of namespaces, no capabilities and no-new-privileges: it refuses
the system calls that reach kernel code an unprivileged job has no business touching (keyrings,
BPF, io_uring, userfaultfd, perf, ptrace, mounts, modules, new user namespaces, ...). Honest
TensorFlow code never calls them. A foreign architecture (the 32-bit ABI through ``int 0x80``)
kills the process; the x32 ABI and listed calls fail with EPERM; ``clone3`` fails with ENOSYS so
that glibc falls back to ``clone``, whose flags the filter can inspect.
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

# linux/filter.h and linux/seccomp.h
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
# offsets in struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16
X32_SYSCALL_BIT = 0x40000000
CLONE_NEWUSER = 0x10000000


@dataclass(frozen=True)
class SyscallTable:
    """The numbers the filter needs on one architecture (they differ between x86_64 and aarch64)."""

    audit_arch: int
    denied: dict[str, int]
    clone: int
    clone3: int
    unshare: int
    has_x32: bool


# Refused with EPERM. Most already fail without capabilities; the filter removes the kernel attack
# surface (and covers those an unprivileged process may use: keyrings, bpf, io_uring, userfaultfd,
# perf, ptrace, process_vm_*, and the new mount API).
_X86_64 = {
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "pidfd_getfd": 438,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "setns": 308,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "acct": 163,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "lookup_dcookie": 212,
    "quotactl": 179,
    "syslog": 103,
    "vhangup": 153,
    "iopl": 172,
    "ioperm": 173,
    "uselib": 134,
    "_sysctl": 156,
    "fanotify_init": 300,
}
_AARCH64 = {
    "keyctl": 219,
    "add_key": 217,
    "request_key": 218,
    "bpf": 280,
    "userfaultfd": 282,
    "perf_event_open": 241,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "ptrace": 117,
    "process_vm_readv": 270,
    "process_vm_writev": 271,
    "kcmp": 272,
    "pidfd_getfd": 438,
    "mount": 40,
    "umount2": 39,
    "pivot_root": 41,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "setns": 268,
    "kexec_load": 104,
    "kexec_file_load": 294,
    "init_module": 105,
    "finit_module": 273,
    "delete_module": 106,
    "swapon": 224,
    "swapoff": 225,
    "reboot": 142,
    "acct": 89,
    "open_by_handle_at": 265,
    "name_to_handle_at": 264,
    "lookup_dcookie": 18,
    "quotactl": 60,
    "syslog": 116,
    "vhangup": 58,
    "fanotify_init": 262,
}
TABLES = {
    "x86_64": SyscallTable(0xC000003E, _X86_64, clone=56, clone3=435, unshare=272, has_x32=True),
    "aarch64": SyscallTable(0xC00000B7, _AARCH64, clone=220, clone3=435, unshare=97, has_x32=False),
}


class UnsupportedArchitecture(Exception):
    """No syscall table for this machine; the sandbox refuses to run without its filter."""


def syscall_table(machine: str | None = None) -> SyscallTable:
    """The table for ``machine`` (default: this host)."""
    machine = machine or platform.machine()
    try:
        return TABLES[{"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)]
    except KeyError:
        raise UnsupportedArchitecture(f"no seccomp syscall table for {machine!r}") from None


def _instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _assemble(program: list[tuple]) -> bytes:
    """Resolve symbolic jump targets (strings naming labels) and pack ``struct sock_filter`` entries."""
    labels: dict[str, int] = {}
    instructions: list[tuple] = []
    for item in program:
        if item[0] == "label":
            labels[item[1]] = len(instructions)
        else:
            instructions.append(item)
    packed = bytearray()
    for index, (code, jt, jf, k) in enumerate(instructions):
        jumps = [labels[target] - index - 1 if isinstance(target, str) else target for target in (jt, jf)]
        if not all(0 <= jump <= 255 for jump in jumps):  # never happens with the tables above; guards edits
            raise ValueError(f"seccomp jump out of range at instruction {index}")
        packed += struct.pack("=HBBI", code, jumps[0], jumps[1], k)
    return bytes(packed)


def build_filter(table: SyscallTable | None = None) -> bytes:
    """The compiled filter (``struct sock_filter[]``) for ``table``, ready for ``bwrap --seccomp``."""
    table = table or syscall_table()
    program: list[tuple] = [
        _instruction(BPF_LD_W_ABS, OFFSET_ARCH),
        _instruction(BPF_JEQ_K, table.audit_arch, jt=1, jf=0),
        _instruction(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        _instruction(BPF_LD_W_ABS, OFFSET_NR),
    ]
    if table.has_x32:
        program.append(_instruction(BPF_JGE_K, X32_SYSCALL_BIT, jt="deny", jf=0))
    program.append(_instruction(BPF_JEQ_K, table.clone3, jt="enosys", jf=0))
    program.append(_instruction(BPF_JEQ_K, table.clone, jt="check_flags", jf=0))
    program.append(_instruction(BPF_JEQ_K, table.unshare, jt="check_flags", jf=0))
    for number in sorted(set(table.denied.values())):
        program.append(_instruction(BPF_JEQ_K, number, jt="deny", jf=0))
    program += [  # classic BPF jumps only forward: every target below comes after its jumps
        _instruction(BPF_RET_K, SECCOMP_RET_ALLOW),
        ("label", "check_flags"),
        _instruction(BPF_LD_W_ABS, OFFSET_ARG0_LOW),
        _instruction(BPF_JSET_K, CLONE_NEWUSER, jt="deny", jf=0),
        _instruction(BPF_RET_K, SECCOMP_RET_ALLOW),
        ("label", "enosys"),
        _instruction(BPF_RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS),
        ("label", "deny"),
        _instruction(BPF_RET_K, SECCOMP_RET_ERRNO | errno.EPERM),
    ]
    return _assemble(program)


def memory_file(data: bytes, name: str = "workshop-sandbox") -> int:
    """A file descriptor of an anonymous memory file holding ``data``, positioned at its start."""
    fd = os.memfd_create(name, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def filter_fd(program: bytes | None = None) -> int:
    """A memory file holding the compiled filter, for ``bwrap --seccomp FD`` (bwrap reads it to the end)."""
    return memory_file(program if program is not None else build_filter(), "workshop-seccomp")
