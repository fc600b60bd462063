"""Whatever the sandbox writes is the participant's verdict, never the host's failure, and always storable (issue 9).

Odd predictions files are `invalid_predictions`, not `infrastructure`; text full of lone surrogates, NUL
bytes and control characters reaches the database cleaned, on SQLite and PostgreSQL alike, through the real
worker slot, which goes on to the next job.
"""

from __future__ import annotations

import time

import pytest
from factories import make_participant

from grader.executor import ExecutorSettings, LocalExecutor
from server.catalog import catalog
from server.db import new_session
from server.grading_settings import grading_settings
from server.job_store import DatabaseJobStore, grade_claimed_job
from server.models import Participant, Submission
from server.queueing import queue_submission

pytestmark = [pytest.mark.sandbox, pytest.mark.hostile]

WRITE_PREDICTIONS = """
def claim_success():
    with open("/out/status.json", "w") as handle:
        json.dump({"ok": True}, handle)

with open("/data/test.csv") as handle:
    ids = [line.split(",")[0] for line in handle.read().splitlines()[1:]]
with open("/out/predictions.csv", "w") as handle:
    handle.write("image_id,malignant\\n" + "".join(f"{image_id},0.5\\n" for image_id in ids))
"""

ODD_PREDICTIONS = {
    "a NUL byte in a row": (
        'open("/out/predictions.csv", "a").write("\\x00,0.5\\n")\nclaim_success()\nreport({})\n',
        "unknown image id",
    ),
    "a stray quote": (
        'open("/out/predictions.csv", "a").write(\'"a"b,0.5\\n\')\nclaim_success()\nreport({})\n',
        "not a readable CSV file",
    ),
    "bytes that are not UTF-8": (
        'open("/out/predictions.csv", "ab").write(b"\\xff\\xfe,0.5\\n")\nclaim_success()\nreport({})\n',
        "not UTF-8",
    ),
    "a folder instead of a file": (
        'os.remove("/out/predictions.csv")\nos.mkdir("/out/predictions.csv")\nclaim_success()\nreport({})\n',
        "not a regular file",
    ),
}


APPENDS_AT_EXIT = """
import atexit
atexit.register(lambda: open("/out/predictions.csv", "a").write("x" * 300000 + "\\n"))

class ConstantModel:
    def predict(self, batches, verbose=0):
        import numpy
        count = len(open("/data/test.csv").read().splitlines()) - 1
        return numpy.full((count, 1), 0.5)

def train(data):
    return ConstantModel()
"""


@pytest.mark.slow  # over 5 s
def test_an_over_long_line_appended_to_the_predictions_at_exit_is_invalid_predictions(run_hostile):
    """The issue's example: the harness writes good predictions and reports success, then the job's atexit
    hook appends a line longer than the csv module's field limit."""
    result = run_hostile(APPENDS_AT_EXIT, time_limit=60).result
    assert (result.status, result.error_kind) == ("failed", "invalid_predictions"), (result.error_kind, result.message)
    assert "not a readable CSV file" in result.message


@pytest.mark.parametrize("name", sorted(ODD_PREDICTIONS))
def test_odd_predictions_are_the_participants_invalid_predictions(run_hostile, name):
    code, message = ODD_PREDICTIONS[name]
    result = run_hostile(WRITE_PREDICTIONS + code).result
    assert (result.status, result.error_kind) == ("failed", "invalid_predictions"), (result.error_kind, result.message)
    assert message in result.message


UNSTORABLE = """
import json as _json
sys.stdout.write("log with NUL \\x00, escape \\x1b[2J and bytes ")
sys.stdout.flush()
os.write(1, b"\\xed\\xa0\\x80 \\xff\\n")
with open("/out/status.json", "w") as handle:
    handle.write(_json.dumps({
        "ok": False, "error_kind": "runtime_error",
        "message": "ValueError: bad \\ud800 and \\x00 here" + "!" * 100000,
        "traceback": "Traceback\\n  \\udfff\\x00\\x07",
        "notes": ["note \\ud800\\x00"], "run_info": {"k\\ud800": "v\\x00", "n": 1e308},
    }))
with open("/out/progress.jsonl", "w") as handle:
    handle.write(_json.dumps({"epoch": 0, "seconds": 1.0, "metrics": {"loss\\ud800\\x00": 0.5}}) + "\\n")
report({})
"""


def test_unstorable_text_from_the_sandbox_is_stored_cleaned(run_hostile):
    result = run_hostile(UNSTORABLE).result
    assert (result.status, result.error_kind) == ("failed", "runtime_error")
    assert result.message.startswith("ValueError: bad \ufffd and \ufffd here") and len(result.message) <= 2000
    for text in (result.message, result.traceback, result.log, *result.notes, *result.run_info):
        assert "\x00" not in text and "\x1b" not in text and "\x07" not in text
        text.encode("utf-8")
    assert result.history[0]["metrics"] == {"loss\ufffd\ufffd": 0.5}


RAISES_SURROGATE_AND_NUL = 'def train(data):\n    raise ValueError("bad \\ud800 and \\x00 in the message")\n'
TRIVIAL = "def train(data):\n    return None\n"


@pytest.mark.slow
def test_a_submission_raising_a_surrogate_and_a_nul_is_recorded_and_the_slot_goes_on(any_db_app):
    """The issue's example, end to end: real harness, real bwrap, real job store; the next job still runs."""
    participant_id = make_participant(any_db_app, "Ada")
    with new_session(any_db_app) as db:
        participant, exercise = db.get(Participant, participant_id), catalog(any_db_app)["cnn-from-scratch"]
        ids = [
            queue_submission(db, participant, exercise, code, None, max_open=2).id
            for code in (RAISES_SURROGATE_AND_NUL, TRIVIAL)
        ]

    settings = grading_settings(any_db_app)

    def grade(job, uid, on_progress, gpu):
        return grade_claimed_job(any_db_app, settings, job, uid, on_progress, gpu)

    executor = LocalExecutor(DatabaseJobStore(any_db_app), grade, ExecutorSettings(idle_poll_seconds=0.2))
    executor.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with new_session(any_db_app) as db:
                rows = [db.get(Submission, submission_id) for submission_id in ids]
            if all(row.is_terminal for row in rows):
                break
            time.sleep(0.5)
    finally:
        executor.stop()
    first, second = rows
    assert (first.status, first.error_kind) == ("failed", "runtime_error"), first.error_message
    assert "bad \ufffd and \ufffd in the message" in first.error_message
    assert "\x00" not in (first.traceback or "") and "ValueError" in first.traceback
    assert second.is_terminal and second.error_kind != "infrastructure"  # the slot went on to the next job
