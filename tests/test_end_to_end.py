"""The whole slice through the Flask test client and a running local executor, real sandbox, real TensorFlow."""

from __future__ import annotations

import dataclasses
import io
import re
import time

import pytest
from factories import join, post_form, submit_code, wait_for_terminal

from server.executor_runtime import start_executor

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
SLUG = "cnn-from-scratch"

RAISES = """
def helper(data):
    raise ValueError("the learning rate is not a colour")

def train(data):
    return helper(data)
"""

SLEEPS = """
import time

def train(data):
    time.sleep(600)
"""

MALFORMED = """
import keras

def train(data):
    size = data.image_size
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))  # three columns: not a probability
    return keras.Model(inputs, outputs)
"""


@pytest.fixture
def running(app):
    """The app with one worker slot running in this process, and a short time limit for the slow cases."""
    start_executor(app, slots=1)
    return app


def submission_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return int(re.search(r"/submissions/(\d+)", response.headers["Location"]).group(1))


def test_join_submit_solution_score_on_leaderboard(running):
    from server.catalog import catalog

    client = running.test_client()
    join(client, "Ada")
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert "ABCD rule" in page and "def train(data)" in page
    starter = client.get(f"/exercises/{SLUG}/starter.py")
    assert starter.headers["Content-Disposition"].startswith("attachment")
    solution = catalog(running)[SLUG].solution
    new_id = submission_id(submit_code(client, SLUG, solution))
    waiting = client.get(f"/submissions/{new_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in waiting and f'data-events="/submissions/{new_id}/events"' in waiting

    state = wait_for_terminal(client, new_id)
    assert state["status"] == "done", state
    assert 0.0 <= state["public_score"] <= 1.0
    assert len(state["history"]) >= 1 and "loss" in state["history"][0]["metrics"]
    assert "Epoch 1/" in state["log"]
    page = client.get(f"/submissions/{new_id}").get_data(as_text=True)
    assert "Public ROC AUC" in page and 'http-equiv="refresh"' not in page

    board = client.get(f"/leaderboard/{SLUG}.json").get_json()
    assert board["rows"][0]["display_name"] == "Ada"
    assert board["rows"][0]["public_score"] == pytest.approx(state["public_score"])
    assert board["rows"][0]["rank"] == 1 and board["rows"][0]["submissions"] == 1
    assert "private_score" not in board["rows"][0]
    assert "Ada" in client.get(f"/leaderboard/{SLUG}").get_data(as_text=True)


def test_syntax_error_is_shown_at_once_and_queues_nothing(running):
    client = running.test_client()
    join(client, "Ada")
    response = submit_code(client, SLUG, "def train(data):\n    return (\n")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "SyntaxError at line" in page
    assert "return (" in page  # the code is kept in the editor
    assert "Your submissions" not in page


def test_upload_must_be_python_and_small(running):
    client = running.test_client()
    join(client, "Ada")

    def upload(name, content):
        return post_form(
            client,
            f"/exercises/{SLUG}/submit",
            {"file": (io.BytesIO(content), name)},
            form_url=f"/exercises/{SLUG}",
            content_type="multipart/form-data",
        )

    assert "ending in .py" in upload("model.txt", b"x = 1").get_data(as_text=True)
    assert "not UTF-8" in upload("model.py", b"\xff\xfe bad").get_data(as_text=True)
    too_big = upload("model.py", b"#" * (2 * 1024 * 1024))
    assert too_big.status_code == 413 and "too large" in too_big.get_data(as_text=True)


def test_runtime_error_shows_the_traceback(running):
    client = running.test_client()
    join(client, "Ada")
    state = wait_for_terminal(client, submission_id(submit_code(client, SLUG, RAISES)))
    assert state["status"] == "failed" and state["error_kind"] == "runtime_error"
    assert "the learning rate is not a colour" in state["traceback"]
    assert "in helper" in state["traceback"] and "harness.py" not in state["traceback"]
    page = client.get(f"/submissions/{state['id']}").get_data(as_text=True)
    assert "Traceback" in page and "ValueError" in page


def test_sleeping_past_the_limit_is_a_timeout(running):
    from server.catalog import catalog

    exercise = catalog(running)[SLUG]
    catalog(running)[SLUG] = dataclasses.replace(exercise, time_limit=10)
    client = running.test_client()
    join(client, "Ada")
    state = wait_for_terminal(client, submission_id(submit_code(client, SLUG, SLEEPS)))
    assert state["status"] == "failed" and state["error_kind"] == "timeout", state


def test_malformed_predictions_are_invalid(running):
    client = running.test_client()
    join(client, "Ada")
    state = wait_for_terminal(client, submission_id(submit_code(client, SLUG, MALFORMED)))
    assert state["status"] == "failed" and state["error_kind"] == "invalid_predictions", state
    assert "(N, 1) or (N, 2)" in state["error_message"]


def test_participants_cannot_see_each_others_code_or_log(running):
    ada, bob = running.test_client(), running.test_client()
    join(ada, "Ada")
    join(bob, "Bob")
    new_id = submission_id(submit_code(ada, SLUG, RAISES + "\n# ada-secret-marker\n"))
    wait_for_terminal(ada, new_id)
    for path in (f"/submissions/{new_id}", f"/submissions/{new_id}.json"):
        response = bob.get(path)
        assert response.status_code == 404
        assert "ada-secret-marker" not in response.get_data(as_text=True)
    assert "ada-secret-marker" not in bob.get(f"/exercises/{SLUG}?restore=1").get_data(as_text=True)
    assert "ada-secret-marker" in ada.get(f"/submissions/{new_id}").get_data(as_text=True)


def test_cancelling_a_running_job_stops_it(running):
    client = running.test_client()
    join(client, "Ada")
    new_id = submission_id(submit_code(client, SLUG, SLEEPS))
    for _ in range(120):
        if client.get(f"/submissions/{new_id}.json").get_json()["status"] == "running":
            break
        time.sleep(0.25)
    post_form(client, f"/submissions/{new_id}/cancel", {}, form_url=f"/submissions/{new_id}")
    assert client.get(f"/submissions/{new_id}.json").get_json()["status"] == "cancelled"
    executor = running.extensions["executor"]
    started = time.monotonic()
    while time.monotonic() - started < 60 and executor.busy():
        time.sleep(0.25)
    assert not executor.busy(), "the slot is still running the cancelled job"
    assert client.get(f"/submissions/{new_id}.json").get_json()["status"] == "cancelled"


def test_starter_kit_download_is_a_zip_with_the_starter_and_no_test_labels(app):
    import zipfile

    client = app.test_client()
    join(client, "Ada")
    response = client.get(f"/exercises/{SLUG}/starter-kit.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as kit:
        names = kit.namelist()
        assert any(name.endswith("/starter.py") for name in names)
        assert any(name.endswith("/run_local.py") for name in names)
        assert not any("test" in name.rsplit("/", 1)[-1] for name in names if "/data/" in name)
    assert client.get(f"/exercises/{SLUG}/starter-kit.zip").data == response.data  # cached, deterministic
