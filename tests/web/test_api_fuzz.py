"""Schemathesis fuzzes a real `workshop serve` through the API's own OpenAPI description (/api/openapi.json).

No worker slot runs (`--slots 0`), so fuzzed submissions are only queued; after the first few, the open-submission
limit answers a documented 400. Every response must be documented (status, content type, headers, body schema) and
none may be a server error.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD, make_participant

from server import create_app
from server.live_instance import free_port
from server.passwords import new_api_token

pytestmark = pytest.mark.slow

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",  # a 405 for every undocumented method, with Allow
    "ignored_auth",  # every operation but the description refuses requests without a valid token
    "ensure_resource_availability",  # a 201 submission can then be read at /api/submissions/{id}
]
SEED = 20261202
MAX_EXAMPLES = 60  # per operation and phase: about 600 requests in all


@pytest.fixture
def live_api(tmp_path, data_dir, database_url, monkeypatch):
    """`workshop init` + `workshop serve --slots 0` on a free loopback port, and a participant's notebook token.

    Once on SQLite, once on the real PostgreSQL (which refuses NUL in text, where SQLite stores it). The
    PostgreSQL role is named in the URL: started as root, serve's web workers run as another OS user.
    """
    if database_url.startswith("postgresql"):
        database_url = database_url.replace("://", f"://{getpass.getuser()}@", 1)
    else:  # a folder of its own: started as root, serve lets its web user write there (SQLite's journal)
        database_url = f"sqlite:///{tmp_path / 'instance' / 'db' / 'workshop.db'}"
    env = {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(tmp_path / "instance"),
        "WORKSHOP_DATABASE_URL": database_url,
        "WORKSHOP_DATA_DIR": str(data_dir),
        "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD,
        "WORKSHOP_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
    }
    workshop = [sys.executable, "-m", "server.cli"]
    subprocess.run([*workshop, "init"], env=env, check=True, capture_output=True)
    for key, value in env.items():  # the same configuration as the server's, to find its database
        if key.startswith("WORKSHOP_"):
            monkeypatch.setenv(key, value)
    app = create_app()
    token = new_api_token()[0]
    make_participant(app, "Fuzzy Notebook", token=token)
    app.extensions["db_engine"].dispose()
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [*workshop, "serve", "--port", str(port), "--slots", "0"], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(url + "/api/openapi.json", timeout=1)  # noqa: S310 - loopback only
                break
            except urllib.error.HTTPError:  # it answers (the fuzzer will say what is wrong with the answer)
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.2)
        yield url, token, log_path
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(live_api, tmp_path):
    url, token, log_path = live_api
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    report = run.stdout + run.stderr
    print(report[-3000:])  # shown with -s or -rA: the phases and the number of cases
    assert run.returncode == 0, report[-12000:] + "\n--- server log ---\n" + log_path.read_text()[-4000:]
    generated = re.search(r"(\d+) generated, \1 passed", report)
    assert generated and int(generated.group(1)) >= 300, report[-3000:]
    assert "Traceback" not in log_path.read_text()
