"""The Docker image, built and run for real (issue 13, point 6), as docker-compose.yml names it.

A private engine (tests/docker/docker_kit.py) builds the base from Debian's packages (``make docker-base``) and the
image (``make docker-image``, trusting pip's CA bundle: this machine's TLS proxy), then runs the compose file's
web and worker services with their image, command and environment: the web container answers, and a worker
container grades a participant's submission through the Docker sandbox backend (sibling job containers through
the engine's socket). The compose file's PostgreSQL is this machine's (a fresh database); its RabbitMQ is not
used yet. The hostile network and filesystem probes of tests/hostile run in job containers the same way.
Everything the engine held is removed at the end. The build's time and the image's size are printed.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from docker_kit import IMAGE, Built, Engine, build_image, compose_services, private_engine, run_argv
from hostile.common import PRELUDE, facts_from
from hostile.test_filesystem import SEARCH_LABELS, WRITE_EVERYWHERE
from hostile.test_network import CONNECT, ROUTES
from sqlalchemy.engine import make_url

from grader.data import dataset_paths
from grader.data.synth import generate_synthetic
from grader.sandbox.check import Listeners

pytestmark = [pytest.mark.docker]
SLUG = "cnn-from-scratch"
WEB_UID = 1000  # the image's `workshop` user
SECRETS = {"WORKSHOP_SECRET_KEY": "docker-test-secret", "WORKSHOP_DB_PASSWORD": "db", "WORKSHOP_BROKER_PASSWORD": "mq"}
EVENT_PASSWORD = "docker-event-42"
BUILD_TIMEOUT = 1800  # the first test that needs the image waits for its cold build (about 5 minutes here)

SOLUTION = """
import keras

def train(data):
    size = data.image_size
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile("adam", "binary_crossentropy")
    model.fit(data.train, validation_data=data.val, epochs=1, verbose=0)
    return model
"""


@pytest.fixture(scope="module")
def instance():
    """The instance folder shared by the containers (the same path on the host), with a small synthetic set."""
    root = Path("/tmp") / f"wsinst-{uuid.uuid4().hex[:8]}"  # noqa: S108 - outside pytest's 0700 folders
    root.mkdir(mode=0o755)
    os.chown(root, WEB_UID, WEB_UID)
    generate_synthetic(dataset_paths(root / "data", "synthetic"), seed=1, train=64, val=24, test=40, size=32)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def services(instance) -> dict[str, dict]:
    return compose_services({**SECRETS, "WORKSHOP_HOST_DIR": str(instance), "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD})


@pytest.fixture(scope="module")
def engine():
    with private_engine() as running:
        yield running


@pytest.fixture(scope="module")
def built(engine, request) -> Built:
    result = build_image(engine)
    request.config.pluginmanager.get_plugin("terminalreporter").write_line(f"\nDocker: {result.summary()}")
    return result


def test_compose_file_names_web_worker_postgres_and_rabbitmq(services, instance):
    assert set(services) == {"web", "worker", "postgres", "rabbitmq"}
    web, worker = services["web"], services["worker"]
    assert web["image"] == worker["image"] == IMAGE == worker["environment"]["WORKSHOP_DOCKER_IMAGE"]
    assert web["command"][:2] == ["workshop", "serve"] and worker["command"][:2] == ["workshop", "worker"]
    assert worker["environment"]["WORKSHOP_SANDBOX"] == "docker" and worker["user"] == "root"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert len(devices) == 1 and devices[0]["capabilities"] == ["gpu"] and len(devices[0]["device_ids"]) == 1
    assert f"{instance}:{instance}:rw" in worker["volumes"] and f"{instance}:{instance}:rw" in web["volumes"]
    assert any(volume.startswith("/var/run/docker.sock:") for volume in worker["volumes"])
    assert web["environment"]["WORKSHOP_DATABASE_URL"].startswith("postgresql+psycopg://workshop:db@postgres:")
    assert worker["environment"]["WORKSHOP_BROKER_URL"].startswith("amqp://workshop:mq@rabbitmq:")
    assert web["environment"]["WORKSHOP_EXECUTOR"] == worker["environment"]["WORKSHOP_EXECUTOR"] == "celery"


def test_compose_file_refuses_to_start_without_a_secret_key(instance):
    with pytest.raises(AssertionError, match="WORKSHOP_SECRET_KEY"):
        compose_services({**SECRETS, "WORKSHOP_SECRET_KEY": "", "WORKSHOP_HOST_DIR": str(instance)})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict | str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = None if data is None else json.dumps(data).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        text, status = error.read().decode(), error.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _serve_command(service: dict, port: int) -> list[str]:
    """The compose command, on this port and on loopback only (the container shares the host's network)."""
    command = list(service["command"])
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    return command


def _wait_for(url: str, engine: Engine, container: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, page = _http(url)
            if status == 200:
                return page
        except OSError:
            pass
        state = engine.docker("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        assert state == "running", engine.docker("logs", container, check=False).stderr[-3000:]
        time.sleep(1)
    raise AssertionError(f"{url} never answered: {engine.docker('logs', container, check=False).stderr[-3000:]}")


def _container_database(postgres_url: str) -> str:
    """The test's fresh PostgreSQL database, as the containers (as their own users) reach it: as our role."""
    url = make_url(postgres_url)
    return url.set(username=url.username or getpass.getuser()).render_as_string(hide_password=False)


def _participant_token(database_url: str, instance: Path) -> str:
    from factories import make_participant

    from server.app import create_app

    app = create_app({"SECRET_KEY": "docker-test-secret", "DATABASE_URL": database_url, "DATA_DIR": str(instance)})
    token = uuid.uuid4().hex
    make_participant(app, "Docker Ada", token=token)
    app.extensions["db_engine"].dispose()
    return token


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_web_answers_and_a_worker_container_grades_a_submission(engine, built, services, instance, postgres_url):
    port, tag = _free_port(), uuid.uuid4().hex[:6]
    database = {  # this machine's PostgreSQL and RabbitMQ stand in for the compose file's (no image is pulled)
        "WORKSHOP_DATABASE_URL": _container_database(postgres_url),
        "WORKSHOP_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "WORKSHOP_CELERY_QUEUE": f"docker-test-{tag}",
    }
    web, worker = f"web-{tag}", f"worker-{tag}"
    base = f"http://127.0.0.1:{port}"
    try:
        command = _serve_command(services["web"], port)
        engine.docker(*run_argv(services["web"], engine, name=web, environment=database, command=command))
        page = _wait_for(f"{base}/login", engine, web)
        assert "Log in" in page or "log in" in page.lower()
        assert engine.docker("exec", web, "id", "-u").stdout.strip() == str(WEB_UID)

        token = _participant_token(database["WORKSHOP_DATABASE_URL"], instance)
        status, body = _http(f"{base}/api/exercises/{SLUG}/submissions", {"code": SOLUTION}, token)
        assert status == 201, body
        # the compose worker's command without its GPU choice: this machine has none
        command = _without_gpus(services["worker"]["command"])
        engine.docker(*run_argv(services["worker"], engine, name=worker, environment=database, command=command))
        state = _wait_for_verdict(f"{base}/api/submissions/{body['id']}", token, engine, worker)
        assert state["status"] == "done" and state["public_score"] is not None, state
        names = engine.docker("ps", "--all", "--format", "{{.Names}}").stdout.split()
        assert sorted(names) == sorted([web, worker]), f"a job container was left: {names}"
    finally:
        engine.docker("rm", "--force", web, worker, check=False)
        _delete_queue(database["WORKSHOP_BROKER_URL"], database["WORKSHOP_CELERY_QUEUE"])


def _delete_queue(broker: str, name: str) -> None:
    from kombu import Connection, Queue

    with Connection(broker) as connection:
        Queue(name).bind(connection.default_channel).delete()


def _without_gpus(command: list[str]) -> list[str]:
    if "--gpus" not in command:
        return list(command)
    at = command.index("--gpus")
    return command[:at] + command[at + 2 :]


def _wait_for_verdict(url: str, token: str, engine: Engine, worker: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    state: dict | str = {}
    while time.monotonic() < deadline:
        status, state = _http(url, token=token)
        assert status == 200, state
        if state["status"] in ("done", "failed", "cancelled"):
            return state
        running = engine.docker("inspect", "--format", "{{.State.Running}}", worker).stdout.strip() == "true"
        if not running:
            break
        time.sleep(1)
    logs = engine.docker("logs", worker, check=False)
    tail = (logs.stdout + logs.stderr)[-3000:]
    raise AssertionError(f"no verdict (worker stopped, or {timeout} s passed): {state}\n{tail}")


@pytest.fixture(scope="module")
def grade_in_worker(engine, built, services, instance):
    """Grade hostile code (tests/hostile's PRELUDE first) with `workshop grade` in a worker container."""

    def grade(code: str, params: dict, time_limit: float = 30) -> tuple[dict, dict]:
        probe = instance / f"probe-{uuid.uuid4().hex[:8]}.py"
        probe.write_text(PRELUDE.format(params=json.dumps(params)) + code)
        command = ["workshop", "grade", str(probe), "--exercise", SLUG, "--json", "--time-limit", str(time_limit)]
        environment = {"WORKSHOP_DATABASE_URL": f"sqlite:///{instance}/grade.db"}
        argv = run_argv(
            services["worker"], engine, name=f"grade-{uuid.uuid4().hex[:6]}", environment=environment, detach=False
        )
        done = engine.docker(*argv[: -len(services["worker"]["command"])], *command, timeout=time_limit + 120)
        result = json.loads(done.stdout)
        return result, facts_from(result["log"])

    return grade


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_job_containers_reach_no_host_listener_and_have_no_route(grade_in_worker):
    listeners = Listeners()
    try:
        ports = listeners.ports()
        for kind in ("tcp4", "udp4", "abstract"):
            params = {"kind": kind, "port": ports.get(kind), "name": listeners.abstract}
            result, facts = grade_in_worker(CONNECT, params)
            assert facts, result
            assert facts["outcome"] == ("allowed" if kind == "udp4" else "ECONNREFUSED"), (kind, facts)
        assert listeners.heard() == [], "a host listener heard a job container"
    finally:
        listeners.close()
    result, facts = grade_in_worker(ROUTES, {})
    assert facts["interfaces"] == ["lo"] and facts["routes"] == [], facts
    assert facts["dns"] == "gaierror" and facts["proxies"] == [], facts


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT)
def test_job_containers_see_no_labels_and_write_only_to_tmp(grade_in_worker, instance):
    private = dataset_paths(instance / "data", "synthetic").private
    names = ["test_labels.csv", "id_map.csv", "grade.db", "workshop.db"]
    result, facts = grade_in_worker(SEARCH_LABELS, {"private": str(private), "names": names}, time_limit=120)
    assert facts, result
    assert facts["seen"] > 1000 and facts["found"] == [] and facts["private_dir"] is False, facts
    assert facts["test_header"] == ["image_id"]

    result, facts = grade_in_worker(WRITE_EVERYWHERE, {})
    assert facts.pop("tmp") == "allowed", facts
    facts.pop("site")
    assert all(value in ("EROFS", "EACCES", "EPERM", "ENOENT") for value in facts.values()), facts
