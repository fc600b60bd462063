"""Hostile submissions that try the network. Traffic goes only to loopback and an abstract unix socket:
the listeners belong to the host (this test), and each must hear nothing."""

from __future__ import annotations

import pytest

from .common import NO_RESULT

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

CONNECT = """
import socket

def tcp(family, host, port):
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect((host, port))
        conn.sendall(b"labels please")

def udp(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as conn:
        for _ in range(20):
            conn.sendto(b"labels please", ("127.0.0.1", port))

def abstract(name):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(3)
        conn.connect("\\0" + name)
        conn.sendall(b"labels please")

kind = PARAMS["kind"]
if kind == "tcp4":
    outcome = attempt(lambda: tcp(socket.AF_INET, "127.0.0.1", PARAMS["port"]))
elif kind == "tcp6":
    outcome = attempt(lambda: tcp(socket.AF_INET6, "::1", PARAMS["port"]))
elif kind == "udp4":
    outcome = attempt(lambda: udp(PARAMS["port"]))
else:
    outcome = attempt(lambda: abstract(PARAMS["name"]))
report({"outcome": outcome})
"""


@pytest.mark.parametrize("kind", ["tcp4", "tcp6", "abstract"])
def test_host_listeners_hear_nothing(run_hostile, listeners, kind):
    if kind not in listeners.sockets:
        pytest.skip("this host has no IPv6 loopback to protect")
    params = {"kind": kind, "port": listeners.ports().get(kind), "name": listeners.abstract}
    run = run_hostile(CONNECT, params=params)
    assert run.facts["outcome"] == "ECONNREFUSED"  # the sandbox's own loopback has nobody listening
    assert listeners.heard() == [], "the host's listener heard the sandbox"


def test_udp_datagrams_to_the_host_arrive_nowhere(run_hostile, listeners):
    run = run_hostile(CONNECT, params={"kind": "udp4", "port": listeners.ports()["udp4"]})
    assert run.facts["outcome"] == "allowed"  # sending works inside the namespace's own loopback...
    assert listeners.heard() == []  # ...and nothing reaches the host


ROUTES = """
import socket
with open("/proc/net/route") as handle:
    routes = handle.read().splitlines()[1:]
with open("/proc/net/ipv6_route") as handle:
    routes6 = [line for line in handle.read().splitlines() if not line.endswith(" lo")]
report({
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "routes": routes + routes6,
    "dns": attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
    "proxies": sorted(key for key in os.environ if "proxy" in key.lower()),
    "resolv_conf": os.path.exists("/etc/resolv.conf"),
})
"""


def test_only_loopback_no_route_no_dns(run_hostile):
    run = run_hostile(ROUTES)
    assert run.facts["interfaces"] == ["lo"] and run.facts["routes"] == []
    # no resolv.conf: glibc asks 127.0.0.1:53 inside the sandbox's own namespace, where nobody answers
    assert run.facts["dns"] == "gaierror" and run.facts["resolv_conf"] is False
    assert run.facts["proxies"] == []


PIP_INSTALL = """
import subprocess
done = subprocess.run(
    [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--retries", "0", "--timeout", "3",
     "--index-url", f"http://127.0.0.1:{PARAMS['port']}/simple", "workshop-nonexistent-package"],
    capture_output=True, text=True, timeout=60,
)
report({"returncode": done.returncode, "output": (done.stdout + done.stderr)[-1500:]})
"""


def test_pip_install_fails_without_network(run_hostile, listeners):
    run = run_hostile(PIP_INSTALL, params={"port": listeners.ports()["tcp4"]}, time_limit=60)
    assert run.facts["returncode"] != 0
    assert "No matching distribution" in run.facts["output"] or "Connection refused" in run.facts["output"]
    assert listeners.heard() == []


DOWNLOAD = """
import keras
outcome = attempt(lambda: keras.utils.get_file("x.tgz", origin=f"http://127.0.0.1:{PARAMS['port']}/x.tgz"))
report({"outcome": outcome})
"""


def test_dataset_download_fails_without_network(run_hostile, listeners):
    run = run_hostile(DOWNLOAD, params={"port": listeners.ports()["tcp4"]}, time_limit=60)
    assert run.facts["outcome"] != "allowed"
    assert listeners.heard() == []
    assert run.result.error_kind == "runtime_error" and NO_RESULT in run.result.message
