"""A throwaway `workshop serve` on loopback, for the browser tests and the benchmarks that drive a real server:
a free port, the server started as a subprocess, and the wait until it answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def workshop_command(*args: str) -> list[str]:
    """The `workshop` command line with this interpreter (no console script needed)."""
    return [sys.executable, "-m", "server.cli", *args]


def start_serve(
    env: dict, log_path: Path, slots: int = 1, extra: Sequence[str] = (), cwd: Path | None = None, wait: float = 30
) -> tuple[subprocess.Popen, str]:
    """`workshop serve` on a free loopback port with ``slots`` worker slots, its output in ``log_path``; returns
    the process and its URL once /login answers (raises when it exits first or does not answer in ``wait`` s)."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - handed to the child; closed here once it started
    try:
        server = subprocess.Popen(
            workshop_command("serve", "--port", str(port), "--slots", str(slots), *extra),
            env=env,
            stdout=log,
            stderr=log,
            cwd=cwd,
        )
    finally:
        log.close()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, server, wait, log_path)
    return server, url


def wait_until_up(url: str, server: subprocess.Popen, seconds: float, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = log_path.read_text(errors="replace")[-3000:] if log_path else ""
            raise RuntimeError(f"workshop serve exited with {server.returncode}:\n{output}")
        try:
            urllib.request.urlopen(url + "/login", timeout=1)  # noqa: S310 - loopback only
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"workshop serve did not answer at {url} within {seconds:.0f} s")


def stop_serve(server: subprocess.Popen, timeout: float = 20) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
