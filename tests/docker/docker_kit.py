"""A private Docker engine and the workshop image built in it, for tests/docker and bench/docker_image.py.

The engine is Debian's docker.io ``dockerd`` on its own socket, data root and containerd namespace, without a
bridge or iptables (containers get loopback only; builds use ``--network host``). Nothing is pulled: the base is
``make docker-base`` (debootstrap, then ``docker import`` as debian:bookworm-slim) and the image is
``make docker-image``, given the CA bundle that pip trusts on this machine (its TLS proxy's CA is in it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
IMAGE = "workshop-server:latest"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def docker_client() -> str:
    """Debian's docker.io client, which builds with BuildKit given DOCKER_BUILDKIT=1; else the docker in PATH."""
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")


@dataclass
class Engine:
    """A running private dockerd: its DOCKER_HOST, socket path, client and the environment to call it with."""

    root: Path
    socket: Path
    client: str = field(default_factory=docker_client)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *arguments: str, check: bool = True, timeout: float = 120, **options):
        """Run the docker client against this engine; text output captured."""
        done = subprocess.run(
            [self.client, *arguments], capture_output=True, text=True, timeout=timeout, env=self.env, **options
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def make(self, target: str, *variables: str, timeout: float = 1800) -> float:
        """``make TARGET`` of the project against this engine; returns its seconds (fails with the log's tail)."""
        started = time.monotonic()
        done = subprocess.run(
            ["make", "--no-print-directory", target, f"DOCKER={self.client}", *variables],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )
        assert done.returncode == 0, f"make {target} failed:\n{(done.stdout + done.stderr)[-4000:]}"
        return time.monotonic() - started

    def image_bytes(self, name: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())


@contextmanager
def private_engine() -> Iterator[Engine]:
    """Start a dockerd of our own; on exit remove every container and image it holds, stop it, delete its data."""
    dockerd = shutil.which("dockerd")
    assert dockerd, "dockerd is missing: `apt-get install docker.io` (make test-deps does it)"
    tag = uuid.uuid4().hex[:8]
    root = Path("/tmp") / f"wsimg-{tag}"  # noqa: S108 - short: unix socket paths are limited
    root.mkdir(mode=0o700)
    engine = Engine(root, root / "docker.sock")
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    argv = [dockerd, "--bridge=none", "--iptables=false", "--ip6tables=false", "--host", engine.host]
    argv += ["--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile", str(root / "pid")]
    argv += ["--containerd-namespace", f"wsimg-{tag}", "--containerd-plugins-namespace", f"wsimg-{tag}-plugins"]
    argv += ["--cgroup-parent", f"wsimg-{tag}"]
    daemon = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while engine.docker("version", check=False, timeout=30).returncode != 0:
            assert daemon.poll() is None, (root / "dockerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (root / "dockerd.log").read_text()[-3000:]
            time.sleep(0.5)
        yield engine
    finally:
        _remove_everything(engine)
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()
        _unmount_under(root)  # dockerd leaves exec/netns/default mounted
        shutil.rmtree(root, ignore_errors=True)


def _unmount_under(root: Path) -> None:
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    for point in sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30, check=False)


def _remove_everything(engine: Engine) -> None:
    try:
        containers = engine.docker("ps", "--all", "--quiet", check=False).stdout.split()
        if containers:
            engine.docker("rm", "--force", "--volumes", *containers, check=False)
        engine.docker("system", "prune", "--all", "--force", "--volumes", check=False, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        pass  # the data root is deleted below anyway


def pip_ca_bundle() -> str:
    """The CA bundle pip trusts here (``pip config list``: global.cert), which holds this machine's proxy CA."""
    done = subprocess.run(
        ["python3", "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
    )
    found = re.findall(r"^[\w:.]*\.cert='([^']+)'", done.stdout, flags=re.MULTILINE)
    existing = [path for path in found if Path(path).is_file()]
    return existing[0] if existing else SYSTEM_CA


@dataclass
class Built:
    """The image built in an engine, and what it cost."""

    image: str
    base_seconds: float
    image_seconds: float
    base_bytes: int
    image_bytes: int

    def summary(self) -> str:
        return (
            f"base debian:bookworm-slim (debootstrap + import): {self.base_seconds:.0f} s, "
            f"{self.base_bytes / 1e6:.0f} MB; image {self.image}: {self.image_seconds:.0f} s, "
            f"{self.image_bytes / 1e6:.0f} MB"
        )


def build_image(engine: Engine, image: str = IMAGE) -> Built:
    """``make docker-base`` then ``make docker-image`` (with pip's CA bundle), timed, in ``engine``."""
    base_seconds = engine.make("docker-base")
    image_seconds = engine.make("docker-image", f"DOCKER_IMAGE={image}", f"DOCKER_CA={pip_ca_bundle()}")
    base_bytes = engine.image_bytes("debian:bookworm-slim")
    return Built(image, base_seconds, image_seconds, base_bytes, engine.image_bytes(image))


def compose_services(environment: dict[str, str]) -> dict[str, dict]:
    """docker-compose.yml's services as ``docker-compose config`` resolves them with ``environment`` (validated)."""
    import yaml

    done = subprocess.run(
        ["docker-compose", "--file", str(PROJECT_ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", ""), **environment},
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr[-3000:]}"
    return yaml.safe_load(done.stdout)["services"]


def run_argv(
    service: dict,
    engine: Engine,
    *,
    name: str,
    environment: dict[str, str],
    command: list[str] | None = None,
    detach: bool = True,
) -> list[str]:
    """``docker run`` arguments for a compose service: its image, user, environment (``environment`` overrides),
    volumes (the Docker socket is this engine's) and command; host network, as the engine has no bridge."""
    argv = ["run", "--name", name, "--network", "host", "--detach" if detach else "--rm"]
    if service.get("user"):
        argv += ["--user", str(service["user"])]
    for key, value in {**service.get("environment", {}), **environment}.items():
        argv += ["--env", f"{key}={value}"]
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":") if isinstance(volume, str) else (volume["source"], volume["target"])
        if target == "/var/run/docker.sock":
            source = str(engine.socket)
        argv += ["--volume", ":".join([source, target, *mode])]
    return [*argv, service["image"], *(command or service["command"])]
