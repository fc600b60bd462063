"""The bubblewrap sandbox, for real: what a job can see and do (loopback traffic only)."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from grader.datasets import dataset_paths
from grader.grading import grade
from server.jobs import catalog

pytestmark = [pytest.mark.sandbox]

PROBE = """
import json, os, socket, sys

def attempt(action):
    try:
        action()
        return "allowed"
    except Exception as error:
        return type(error).__name__

def connect():
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as conn:
        conn.sendall(b"hello from the sandbox")

def write(path):
    def action():
        with open(path, "w") as handle:
            handle.write("x")
    return action

facts = {
    "uid": os.getuid(),
    "gid": os.getgid(),
    "groups": os.getgroups(),
    "base_prefix": sys.base_prefix,
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "connect_host": attempt(connect),
    "write_code": attempt(write("/job/code/submission.py")),
    "write_data": attempt(write("/data/train.csv")),
    "write_usr": attempt(write("/usr/evil")),
    "write_tmp": attempt(write("/tmp/ok")),
    "env": sorted(os.environ),
    "proc1_env": attempt(lambda: open("/proc/1/environ", "rb").read()),
    "data_files": sorted(os.listdir("/data")),
    "root_files": sorted(os.listdir("/")),
    "test_header": open("/data/test.csv").readline().strip(),
}
print("FACTS " + json.dumps(facts), flush=True)

def train(data):
    raise SystemExit("probe done")
"""


@pytest.fixture
def listener():
    """A TCP listener on the host's loopback that must hear nothing from the sandbox."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def heard_anything(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def test_the_job_is_isolated(app, data_dir, tmp_path, listener, monkeypatch):
    monkeypatch.setenv("WORKSHOP_SECRET_KEY", "must-not-leak")
    code = PROBE.replace("PORT", str(listener.getsockname()[1]))
    exercise = catalog(app)["cnn-from-scratch"]
    result = grade(code, exercise, dataset_paths(data_dir, "synthetic"), sandbox="bwrap", work_dir=tmp_path, uid=61050)
    line = next(line for line in result.log.splitlines() if line.startswith("FACTS "))
    facts = json.loads(line[len("FACTS ") :])

    assert facts["uid"] == 61050 and facts["gid"] == 61050 and facts["groups"] == []
    assert facts["interfaces"] == ["lo"]
    assert facts["connect_host"] != "allowed" and not heard_anything(listener)
    assert facts["write_code"] != "allowed" and facts["write_data"] != "allowed" and facts["write_usr"] != "allowed"
    assert facts["write_tmp"] == "allowed"
    assert "WORKSHOP_SECRET_KEY" not in facts["env"] and not any(key.startswith("WORKSHOP") for key in facts["env"])
    assert facts["proc1_env"] != "allowed" or "must-not-leak" not in line
    assert "private" not in facts["root_files"] and "test_labels.csv" not in facts["data_files"]
    assert facts["test_header"] == "image_id"
    assert facts["base_prefix"] == sys.base_prefix  # the interpreter's own standard library, not a fallback
    assert result.status == "failed" and result.error_kind == "runtime_error"
    assert "probe done" in result.message
