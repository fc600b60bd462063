"""Fast checks of the grader's pieces: source checks, the exercise loader, log capture, the bwrap command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grader.exercises import ExerciseError, load_catalog, load_exercise
from grader.grading import MAX_CODE_BYTES, SubmissionRejected, check_source
from grader.sandbox import INSIDE_DATA, INSIDE_OUT, Limits, LogCapture, SandboxJob, bwrap_argv

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (b"def train(:\n", "syntax_error", "SyntaxError at line 1"),
        (b"   \n", "empty", "empty"),
        (b"\xff\xfe", "encoding", "not UTF-8"),
        (b"x = 1\x00", "encoding", "NUL"),
        (b"#" * (MAX_CODE_BYTES + 1), "too_large", "at most"),
    ],
)
def test_check_source_rejects(code, kind, message):
    with pytest.raises(SubmissionRejected, match=message) as caught:
        check_source(code)
    assert caught.value.kind == kind


def test_check_source_accepts_unicode():
    assert check_source("# Grüße\ndef train(data):\n    return None\n".encode()).startswith("# Grüße")


def test_every_exercise_in_the_repository_loads():
    exercises = load_catalog(PROJECT_ROOT / "exercises")
    assert exercises, "no exercises found"
    for exercise in exercises.values():
        assert exercise.readme and "def train" in exercise.starter and "def train" in exercise.solution


def test_example_spec_is_a_valid_exercise(tmp_path):
    folder = tmp_path / "example"
    folder.mkdir()
    (folder / "exercise.toml").write_text((PROJECT_ROOT / "exercises" / "_example.toml").read_text())
    for name in ("README.md", "starter.py", "solution.py"):
        (folder / name).write_text("def train(data): ...\n")
    assert load_exercise(folder).title == "A small CNN from scratch"


def test_loader_reports_every_problem_with_file_and_field(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "exercise.toml").write_text(
        'title = ""\norder = "first"\nimage_size = 4\nscore_band = [0.9, 0.1]\nextra = 1\n'
    )
    with pytest.raises(ExerciseError) as caught:
        load_exercise(folder)
    text = str(caught.value)
    for expected in (
        "README.md: file missing",
        "field 'title'",
        "field 'order' must be an integer",
        "field 'image_size'",
        "field 'time_limit' is required",
        "field 'score_band'",
        "unknown field 'extra'",
    ):
        assert expected in text
    assert str(folder / "exercise.toml") in text


def test_loader_names_invalid_toml(tmp_path):
    folder = tmp_path / "bad-toml"
    folder.mkdir()
    (folder / "exercise.toml").write_text("title = \n")
    with pytest.raises(ExerciseError, match="not valid TOML"):
        load_exercise(folder)


def test_log_capture_keeps_head_and_tail_in_bounded_memory():
    capture = LogCapture(head_bytes=10, tail_bytes=20)
    capture.feed(b"HEAD-12345")
    for _ in range(10_000):
        capture.feed(b"middle-middle-")
    capture.feed(b"...THE-END")
    text = capture.text()
    assert text.startswith("HEAD-12345") and text.endswith("THE-END")
    assert "bytes of output skipped" in text
    assert len(text) < 200 and capture.tail_size < 100


def test_bwrap_command_isolates_the_job(tmp_path):
    job = SandboxJob(tmp_path / "code", tmp_path / "out", tmp_path / "data" / "public", {}, Limits(), uid=61005)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc")
    joined = " ".join(argv)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert flag in argv
    assert "--new-session" in argv and "--clearenv" in argv
    assert f"--ro-bind {tmp_path / 'data' / 'public'} {INSIDE_DATA}" in joined
    assert f"--bind {tmp_path / 'out'} {INSIDE_OUT}" in joined
    assert "private" not in joined
    assert "--reuid=61005" in argv and "--no-new-privs" in argv and "--bounding-set=-all" in argv
    # the interpreter's own installation is bound at its own path, with world-readable parents
    assert f"--ro-bind {Path(sys.base_prefix).resolve()} {Path(sys.base_prefix).resolve()}" in joined
    env = {argv[i + 1]: argv[i + 2] for i, arg in enumerate(argv) if arg == "--setenv"}
    assert "SECRET_KEY" not in " ".join(env) and "WORKSHOP" not in " ".join(env)
    assert env["HOME"] == "/tmp"


def test_the_interpreter_is_bound_after_tmp_so_a_checkout_under_tmp_works(tmp_path):
    job = SandboxJob(tmp_path / "code", tmp_path / "out", tmp_path / "data", {}, Limits(), uid=61005)
    argv = bwrap_argv(job, tmp_path / "spec.json", tmp_path / "etc")
    tmp_bind = next(i for i, arg in enumerate(argv) if arg == "/tmp" and argv[i - 2] == "--bind")
    prefix = str(Path(sys.prefix).resolve())
    venv_bind = max(i for i, arg in enumerate(argv) if arg == prefix)
    assert venv_bind > tmp_bind
