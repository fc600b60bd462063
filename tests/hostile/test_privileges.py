"""Hostile submissions that look for privileges: capabilities, setuid binaries, dangerous system calls."""

from __future__ import annotations

import pytest

from grader.sandbox.seccomp import syscall_table

from .common import UID

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

IDENTITY = """
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
report({
    "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
    "caps": {key: status[key].strip() for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
    "no_new_privs": status["NoNewPrivs"].strip(),
    "seccomp": status["Seccomp"].strip(),
    "setuid_root": attempt(lambda: os.setuid(0)),
    "setgroups": attempt(lambda: os.setgroups([0])),
    "chown_to_root": attempt(lambda: (open("/tmp/mine", "w").close(), os.chown("/tmp/mine", 0, 0))),
    "chroot": attempt(lambda: os.chroot("/tmp")),
    "sethostname": attempt(lambda: __import__("socket").sethostname("owned")),
})
"""


def test_no_capabilities_and_no_way_to_root(run_hostile):
    facts = run_hostile(IDENTITY).facts
    assert facts["ids"] == [UID, UID, UID, UID, []]
    assert set(facts["caps"].values()) == {"0000000000000000"}
    assert facts["no_new_privs"] == "1" and facts["seccomp"] == "2"
    for action in ("setuid_root", "setgroups", "chown_to_root", "chroot", "sethostname"):
        assert facts[action] == "EPERM", action


SETUID_BINARIES = """
import stat, subprocess, time
setuid = sorted(
    os.path.join(folder, name)
    for folder in ("/usr/bin", "/usr/sbin", "/usr/lib/openssh", "/usr/lib/dbus-1.0")
    if os.path.isdir(folder)
    for name in os.listdir(folder)
    if os.stat(os.path.join(folder, name)).st_mode & stat.S_ISUID
)
quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
passwd = subprocess.Popen(["/usr/bin/passwd"], stdin=subprocess.PIPE, **quiet)
time.sleep(0.2)
try:
    uid_line = [line for line in open(f"/proc/{passwd.pid}/status") if line.startswith("Uid:")][0].split()[1:]
except (OSError, IndexError):
    uid_line = "gone"
passwd.kill()
passwd.wait()
mount = subprocess.run(["mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True, text=True)
report({"setuid": setuid, "passwd_uids": uid_line, "mount": mount.returncode})
"""


def test_setuid_binaries_do_not_grant_root(run_hostile):
    facts = run_hostile(SETUID_BINARIES).facts
    assert "/usr/bin/passwd" in facts["setuid"]  # they are there, with their bit...
    assert facts["passwd_uids"] in ("gone", [str(UID)] * 4)  # ...and run as the job's uid (no_new_privs)
    assert facts["mount"] != 0


SYSCALLS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def call(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    if result == 0 and number == PARAMS["clone"]:
        os._exit(0)  # a child of an (unexpectedly) successful clone
    return "allowed" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

numbers = PARAMS["numbers"]
args = {
    "keyctl": (0, -3, 0), "add_key": (0, 0, 0, 0, -3), "request_key": (0, 0, 0, 0),
    "bpf": (0, 0, 0), "userfaultfd": (1,), "perf_event_open": (0, 0, -1, -1, 0),
    "io_uring_setup": (1, 0), "io_uring_enter": (0, 0, 0, 0, 0, 0), "io_uring_register": (0, 0, 0, 0),
    "ptrace": (0, 0, 0, 0), "process_vm_readv": (os.getpid(), 0, 0, 0, 0, 0),
    "process_vm_writev": (os.getpid(), 0, 0, 0, 0, 0), "mount": (0, 0, 0, 0, 0), "umount2": (0, 0),
    "pivot_root": (0, 0), "setns": (-1, 0), "kexec_load": (0, 0, 0, 0), "kexec_file_load": (-1, -1, 0, 0, 0),
    "init_module": (0, 0, 0), "finit_module": (-1, 0, 0), "delete_module": (0, 0), "swapon": (0, 0),
    "swapoff": (0,), "reboot": (0, 0, 0, 0), "acct": (0,), "open_by_handle_at": (-1, 0, 0),
    "fsopen": (0, 0), "open_tree": (-1, 0, 0), "kcmp": (0, 0, 0, 0, 0), "pidfd_getfd": (-1, -1, 0),
}
facts = {name: call(numbers[name], *args.get(name, ())) for name in numbers}
facts["unshare(CLONE_NEWUSER)"] = call(PARAMS["unshare"], 0x10000000)
facts["clone(CLONE_NEWUSER)"] = call(PARAMS["clone"], 0x10000000 | 17, 0, 0, 0, 0)
facts["clone3"] = call(PARAMS["clone3"], 0, 0)
facts["fork still works"] = "allowed" if os.waitpid(os.fork() or os._exit(0), 0) else "broken"
report(facts)
"""


def test_dangerous_system_calls_are_denied_by_seccomp(run_hostile):
    table = syscall_table()
    params = {"numbers": table.denied, "unshare": table.unshare, "clone": table.clone, "clone3": table.clone3}
    facts = run_hostile(SYSCALLS, params=params).facts
    assert facts.pop("clone3") == "ENOSYS"  # so that glibc falls back to clone, whose flags the filter sees
    assert facts.pop("fork still works") == "allowed"
    denied = {name: outcome for name, outcome in facts.items() if outcome != "EPERM"}
    assert denied == {}, denied
    assert len(facts) >= 30


OTHER_ABIS = """
import ctypes, mmap, signal
child = os.fork()
if child == 0:
    code = b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3"  # mov eax, 20 (getpid); int 0x80; ret
    memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    memory.write(code)
    ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(memory)))()
    os._exit(0)
_, status = os.waitpid(child, 0)
libc = ctypes.CDLL(None, use_errno=True)
ctypes.set_errno(0)
x32 = libc.syscall(0x40000000 | 39)  # getpid through the x32 ABI
report({
    "int80": signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else os.WEXITSTATUS(status),
    "x32": errno.errorcode.get(ctypes.get_errno()) if x32 < 0 else "allowed",
})
"""


@pytest.mark.skipif(syscall_table().audit_arch != 0xC000003E, reason="the 32-bit and x32 ABIs exist only on x86_64")
def test_32_bit_and_x32_system_calls_are_refused(run_hostile):
    facts = run_hostile(OTHER_ABIS).facts
    assert facts == {"int80": "SIGSYS", "x32": "EPERM"}  # the foreign ABI kills the process outright


USER_NAMESPACES = """
import subprocess
unshare = subprocess.run(["unshare", "--user", "--map-root-user", "id", "-u"], capture_output=True, text=True)
bwrap = subprocess.run(["bwrap", "--unshare-user", "--bind", "/", "/", "id", "-u"], capture_output=True, text=True)
report({"unshare": [unshare.returncode, unshare.stdout.strip()], "bwrap": [bwrap.returncode, bwrap.stdout.strip()]})
"""


def test_no_new_user_namespaces(run_hostile):
    facts = run_hostile(USER_NAMESPACES).facts
    assert facts["unshare"][0] != 0 and facts["unshare"][1] != "0"
    assert facts["bwrap"][0] != 0 and facts["bwrap"][1] != "0"
