"""bench/load.py: its participants read the real pages (CSRF, redirects, refusals), and a small run works end to end."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from factories import EVENT_PASSWORD
from paths import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench"


def load_pages():
    """bench/load_pages.py (not a package; never bench/locustfile.py, whose import patches the test process)."""
    spec = importlib.util.spec_from_file_location("load_pages", BENCH / "load_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_participant_joins_submits_and_a_second_open_submission_is_an_expected_refusal(client):
    pages = load_pages()
    form = client.get("/join").get_data(as_text=True)
    joined = client.post("/join", data=pages.join_form(pages.csrf_token(form), EVENT_PASSWORD, "Load 1"))
    assert joined.status_code == 302, pages.problem(joined.get_data(as_text=True))

    token = pages.csrf_token(client.get("/exercises/cnn-from-scratch").get_data(as_text=True))
    assert token
    first = client.post("/exercises/cnn-from-scratch/submit", data={"csrf_token": token, "code": pages.CODE})
    submission = pages.submitted_id(first.headers.get("Location"))
    assert first.status_code == 302 and submission is not None, pages.problem(first.get_data(as_text=True))
    assert client.get(f"/submissions/{submission}.json").get_json()["status"] in pages.OPEN_STATUSES

    second = client.post("/exercises/cnn-from-scratch/submit", data={"csrf_token": token, "code": pages.CODE})
    assert pages.submitted_id(second.headers.get("Location")) is None
    assert pages.expected_refusal(second.status_code, second.get_data(as_text=True))


def test_a_wrong_event_password_is_an_error_with_the_pages_words(client):
    pages = load_pages()
    form = client.get("/join").get_data(as_text=True)
    refused = client.post("/join", data=pages.join_form(pages.csrf_token(form), "not-the-password", "Load 2"))
    assert refused.status_code == 400
    assert not pages.expected_refusal(refused.status_code, refused.get_data(as_text=True))
    assert pages.problem(refused.get_data(as_text=True)) == "The event password is not right."


@pytest.mark.slow
def test_a_small_load_run_sets_up_serves_reports_and_cleans_up():
    """Three participants for a few seconds: both tables, no error, its PostgreSQL database dropped afterwards."""
    import psycopg

    def load_databases() -> set[str]:
        with psycopg.connect("host=127.0.0.1 port=5432 dbname=test") as connection:
            rows = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'workshop_load_%'")
            return {row[0] for row in rows}

    def instances() -> set[str]:
        return {path.name for path in Path(tempfile.gettempdir()).glob("workshop-load-*")}

    before, folders = load_databases(), instances()
    command = [sys.executable, str(BENCH / "load.py"), "--users", "3", "--ramp", "1", "--steady", "8"]
    command += ["--stand-in-slots", "1", "--job-seconds", "0.5", "1"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    output = run.stdout + run.stderr
    assert "Ramp: 3 participants" in output and "Steady: 3 participants" in output, output
    assert re.search(r"POST /join +3 +0 ", output), output
    assert re.search(r"errors: 0$", output, re.MULTILINE), output
    assert "machine: " in output and "load average" in output, output
    assert load_databases() == before  # its database was dropped
    assert instances() == folders  # its instance folder removed
