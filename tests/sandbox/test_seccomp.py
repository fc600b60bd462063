"""The seccomp filter, tested on the host without bubblewrap: loaded in a forked child, then called."""

from __future__ import annotations

import errno
import json
import os
import platform
import struct

import pytest

from grader.sandbox.seccomp import TABLES, UnsupportedArchitecture, build_filter, syscall_table

pytestmark = [pytest.mark.sandbox]


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
