"""What a failing job tells its participant: the traceback once (in the status, not again in the log), the
participant's own frames only (no importlib, no harness), and a plain contract message when train(data) returns None.

The harness runs as the sandbox runs it (``python -I harness.py SPEC``) but without bubblewrap; jobs that fail before
TensorFlow is imported take a fraction of a second, the others import TensorFlow and are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_runs import run_harness

from grader.harness import ContractError, check_model, error_message, submission_traceback


def run_job(tmp_path: Path, data_dir: Path, code: str, **spec_options) -> tuple[dict, str]:
    """Run the harness on ``code``; returns its status.json and everything it printed."""
    status, out, err = run_harness(tmp_path, data_dir, code, **spec_options)
    return status, out + err


IMPORT_ERROR = "import random\n\nimport keras_helpers_that_do_not_exist\n\ndef train(data):\n    return None\n"


def test_an_import_error_shows_the_participants_line_once_without_importlib_frames(tmp_path, data_dir):
    status, log = run_job(tmp_path, data_dir, IMPORT_ERROR)
    assert status["error_kind"] == "import_error"
    assert status["message"] == "ModuleNotFoundError: No module named 'keras_helpers_that_do_not_exist'"
    trace = status["traceback"]
    assert trace.startswith("Traceback (most recent call last):\n") and 'submission.py", line 3, in <module>' in trace
    assert "importlib" not in trace and "harness.py" not in trace and "direct cause" not in trace
    assert "Traceback" not in log  # printed once: in the status (the page), a one-line pointer in the log
    assert "[harness] failed: ModuleNotFoundError: No module named 'keras_helpers_that_do_not_exist'" in log
    assert "tensorflow" not in status["run_info"]  # failed before TensorFlow was imported: fast


def test_an_import_error_deeper_down_keeps_the_participants_line_first(tmp_path, data_dir):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "helpers.py").write_text("from math import no_such_name\n", encoding="utf-8")
    status, _ = run_job(tmp_path, data_dir, "import helpers\n\ndef train(data):\n    return None\n")
    trace = status["traceback"]
    assert status["error_kind"] == "import_error" and "cannot import name 'no_such_name'" in status["message"]
    first = trace.index('submission.py", line 1')
    assert first < trace.index('helpers.py", line 1') and "importlib" not in trace[:first]


def test_code_without_train_is_a_contract_error_without_a_traceback(tmp_path, data_dir):
    status, log = run_job(tmp_path, data_dir, "def fit(data):\n    return None\n")
    assert status["error_kind"] == "contract" and status["traceback"] is None
    assert status["message"] == "your code defines no function train(data) at the top level"
    assert "Traceback" not in log


def test_check_model_names_none_and_other_returns():
    with pytest.raises(ContractError) as refused:
        check_model(None)
    assert refused.value.kind == "contract"
    assert str(refused.value) == "train(data) returned None; end it with `return model`, the keras.Model you trained"
    with pytest.raises(ContractError, match=r"must return the keras.Model you trained; it returned \[1, 2\]"):
        check_model([1, 2])
    check_model(type("Model", (), {"predict": lambda self: None})())


def test_contract_messages_have_no_exception_name_and_no_harness_traceback():
    error = ContractError("contract", "train(data) returned None")
    assert error_message(error) == "train(data) returned None"
    assert submission_traceback(error, "/job/code/submission.py") is None
    assert error_message(ValueError("bad")) == "ValueError: bad"


@pytest.mark.slow
def test_train_returning_none_is_named_as_such(tmp_path, data_dir):
    status, log = run_job(tmp_path, data_dir, "def train(data):\n    model = 'forgot to return it'\n")
    assert status["error_kind"] == "contract" and status["message"].startswith("train(data) returned None")
    assert status["traceback"] is None and "Traceback" not in log


@pytest.mark.slow
def test_an_error_in_train_is_reported_once_from_the_participants_frames(tmp_path, data_dir):
    code = "def helper(x):\n    return x / 0\n\ndef train(data):\n    return helper(data.image_size)\n"
    status, log = run_job(tmp_path, data_dir, code)
    trace = status["traceback"]
    assert status["error_kind"] == "runtime_error" and status["message"] == "ZeroDivisionError: division by zero"
    assert 'submission.py", line 5, in train' in trace and 'submission.py", line 2, in helper' in trace
    assert "harness.py" not in trace
    assert "Traceback" not in log and log.count("ZeroDivisionError") == 1
