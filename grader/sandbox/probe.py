"""Probe run INSIDE the sandbox by ``workshop sandbox check``: records what a job can see and do, as JSON.

Standard library only (it runs as ``python -I``, like the harness), no TensorFlow, so the check is fast.
Every action here is one a hostile submission would try; network attempts go only to loopback and to
an abstract unix socket, whose listeners the host opened and checks afterwards.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import signal
import socket
import sys
import time

LIBC = ctypes.CDLL(None, use_errno=True)


def attempt(action) -> str:
    """'allowed', or the name of the error that stopped ``action``."""
    try:
        action()
        return "allowed"
    except Exception as error:  # noqa: BLE001 - every failure is a fact
        code = getattr(error, "errno", None)
        return errno.errorcode.get(code, type(error).__name__) if code else type(error).__name__


def syscall_errno(number: int, *args: int) -> str:
    ctypes.set_errno(0)
    result = LIBC.syscall(number, *[ctypes.c_long(arg) for arg in args])
    return "allowed" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def proc_status() -> dict[str, str]:
    with open("/proc/self/status") as handle:
        return {key: value.strip() for key, _, value in (line.partition(":") for line in handle)}


def write_to(path: str):
    def action():
        with open(path, "w") as handle:
            handle.write("x")

    return action


def network_facts(spec: dict) -> dict:
    ports = spec["ports"]

    def tcp(family, host, port):
        def action():
            with socket.socket(family, socket.SOCK_STREAM) as conn:
                conn.settimeout(2)
                conn.connect((host, port))
                conn.sendall(b"hello from the sandbox")

        return action

    def udp():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
            conn.sendto(b"hello from the sandbox", ("127.0.0.1", ports["udp4"]))

    def abstract():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect("\0" + spec["abstract"])
            conn.sendall(b"hello from the sandbox")

    with open("/proc/net/route") as handle:
        routes = [line.split()[0] for line in handle.readlines()[1:] if line.strip()]
    with open("/proc/net/ipv6_route") as handle:
        routes6 = [line.split()[-1] for line in handle if line.split()[-1] != "lo"]
    facts = {
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "routes": routes + routes6,
        "tcp4": attempt(tcp(socket.AF_INET, "127.0.0.1", ports["tcp4"])),
        "udp4": attempt(udp),
        "abstract": attempt(abstract),
        "dns": attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
    }
    if "tcp6" in ports:  # a host without IPv6 (e.g. a worker in a container) has no ::1 listener
        facts["tcp6"] = attempt(tcp(socket.AF_INET6, "::1", ports["tcp6"]))
    return facts


def memory_fact(limit_mb: int) -> str:
    """Allocate (and touch) up to twice the limit in a child: the cgroup must kill it."""
    child = os.fork()
    if child == 0:
        chunks = []
        try:
            for _ in range(2 * limit_mb // 16):
                chunks.append(b"\x01" * (16 * 1024 * 1024))
        except MemoryError:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        return "killed by " + signal.Signals(os.WTERMSIG(status)).name
    return {0: "allocated twice the limit", 3: "MemoryError (rlimit only)"}.get(os.WEXITSTATUS(status), str(status))


def process_fact(limit: int) -> int:
    """Fork until refused (children wait on a pipe); returns how many forks succeeded."""
    reader, writer = os.pipe()
    children = []
    try:
        for _ in range(limit + 16):
            child = os.fork()
            if child == 0:
                os.close(writer)
                os.read(reader, 1)
                os._exit(0)
            children.append(child)
    except OSError:
        pass
    os.close(writer)
    for child in children:
        os.waitpid(child, 0)
    os.close(reader)
    return len(children)


def int80_fact() -> str:
    """Make a 32-bit system call (int 0x80, getpid) in a child: the filter must kill it."""
    child = os.fork()
    if child == 0:
        code = b"\xb8\x14\x00\x00\x00\xcd\x80\xc3"  # mov eax, 20; int 0x80; ret
        memory = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        memory.write(code)
        address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
        ctypes.CFUNCTYPE(ctypes.c_int)(address)()
        os._exit(0)
    _, status = os.waitpid(child, 0)
    return signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"


def seccomp_facts(spec: dict) -> dict:
    numbers = spec["syscalls"]
    facts = {
        "keyctl": syscall_errno(numbers["keyctl"], 0, -3, 0),
        "unshare_user": syscall_errno(numbers["unshare"], 0x10000000),
        "io_uring_setup": syscall_errno(numbers["io_uring_setup"], 1, 0),
        "ptrace_traceme": syscall_errno(numbers["ptrace"], 0, 0, 0, 0),
    }
    if spec.get("machine") == "x86_64":
        facts["int80"] = int80_fact()
    return facts


def search_labels(marker: str) -> list[str]:
    """Every file named like the hidden ones, or whose start holds the marker planted in the private labels."""
    found = []
    for top in ("/data", "/job", "/opt", "/tmp", "/etc", "/out"):  # noqa: S108 - the sandbox's own /tmp
        for folder, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(folder, name)
                if name in ("test_labels.csv", "id_map.csv"):
                    found.append(path)
                    continue
                try:
                    with open(path, "rb") as handle:
                        if marker.encode() in handle.read(65536):
                            found.append(path)
                except OSError:
                    continue
    return found


def environ_leaks() -> list[str]:
    leaks = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if b"WORKSHOP" in handle.read():
                    leaks.append(pid)
        except OSError:
            continue
    return leaks


def daemonise() -> None:
    """Leave a process behind that tries to outlive the job (the host must find none afterwards)."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)
        os._exit(0)


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    status = proc_status()
    import importlib.util

    numpy = importlib.util.find_spec("numpy")
    statvfs = os.statvfs("/tmp")  # noqa: S108 - the sandbox's own
    facts = {
        "uid": [os.getuid(), os.geteuid()],
        "gid": [os.getgid(), os.getegid()],
        "groups": os.getgroups(),
        "caps": {key: status.get(key) for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")},
        "no_new_privs": status.get("NoNewPrivs"),
        "seccomp_mode": status.get("Seccomp"),
        "seccomp": seccomp_facts(spec),
        "network": network_facts(spec),
        "memory": memory_fact(spec["memory_mb"]),
        "forks": process_fact(spec["max_processes"]),
        "private_path": os.path.exists(spec["host_private"]),
        "host_work_dir": os.path.exists(spec["host_job_dir"]),
        "labels_found": search_labels("".join(spec["marker_parts"])),
        "data_files": sorted(os.listdir("/data")),
        "job_files": sorted(os.listdir("/job")),
        "test_header": open("/data/test.csv").readline().strip(),
        "writes": {
            path: attempt(write_to(path))
            for path in ("/job/code/x", "/data/x", "/usr/x", "/etc/passwd", "/x", sys.prefix + "/x", "/tmp/x")  # noqa: S108
        },
        "tmp_mb": statvfs.f_blocks * statvfs.f_frsize / 2**20,
        "lower_oom_score": attempt(_lower_oom),
        "env": sorted(os.environ),
        "environ_leaks": environ_leaks(),
        "base_prefix": sys.base_prefix,
        "prefix": sys.prefix,
        "stdlib": os.__file__,
        "numpy": numpy.origin if numpy else None,
        "ld_cache": attempt(lambda: open("/etc/ld.so.cache", "rb").close()),
        "visible_pids": sorted(int(pid) for pid in os.listdir("/proc") if pid.isdigit()),
        "host_pid_visible": os.path.exists(f"/proc/{spec['host_pid']}"),
        "signal_host": attempt(lambda: os.kill(spec["host_pid"], 0)),  # signal 0: only asks whether it could
        "devices": sorted(os.listdir("/dev")),
    }
    daemonise()
    with open(os.path.join(spec["out_dir"], "probe.json"), "w") as handle:
        json.dump(facts, handle)


def _lower_oom() -> None:
    with open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("-1000")


if __name__ == "__main__":
    main(sys.argv[1])
