"""Repeatable runs: the seed travels from the submission row to the harness (data.seed), which seeds Python, NumPy
and TensorFlow with it; the run record gets the versions, the device and the data set's checksum; the starter
kit's runner takes --seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from factories import make_participant, make_submission
from harness_runs import run_harness

from grader import local_runner
from grader.data import dataset_paths
from grader.data.checksum import dataset_checksum
from grader.grading import GradeResult, GradingSettings, _sandbox_job, grade, limits_for
from grader.harness import MAX_SEED, choose_seed
from server.catalog import catalog
from server.job_store import DatabaseJobStore, with_dataset_record

NUMBERS = """
import random
import numpy as np
import keras
import tensorflow as tf
from keras import layers

def train(data):
    labels = next(iter(data.train))[1].numpy().tolist()
    data.log(f"NUMBERS {data.seed} {random.random():.15f} {np.random.rand():.15f} "
             f"{float(tf.random.uniform(())):.15f} {labels}")
    model = keras.Sequential([
        keras.Input((data.image_size, data.image_size, 3)), layers.Rescaling(1 / 255),
        layers.Conv2D(4, 3, activation="relu"), layers.GlobalAveragePooling2D(), layers.Dropout(0.5),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(data.train, epochs=2, verbose=0)
    return model
"""


def run_seeded(folder: Path, data_dir: Path, seed: int | None) -> tuple[str, str, dict]:
    """The NUMBERS line, the predictions and the status of one harness run with ``seed``."""
    status, out, err = run_harness(folder, data_dir, NUMBERS, timeout=240, seed=seed)
    assert status["ok"], out[-2000:] + err[-2000:]
    numbers = next(line for line in out.splitlines() if "NUMBERS" in line)
    return numbers, (folder / "out" / "predictions.csv").read_text(), status


@pytest.mark.slow
def test_the_same_seed_trains_the_same_model_and_another_seed_does_not(tmp_path, data_dir):
    first = run_seeded(tmp_path / "one", data_dir, 1234)
    second = run_seeded(tmp_path / "two", data_dir, 1234)
    other = run_seeded(tmp_path / "three", data_dir, 99)
    assert first[0].startswith("[data.log] NUMBERS 1234 ")
    assert first[0] == second[0] and first[1] == second[1]  # random, NumPy, TensorFlow, shuffling, training
    assert other[0] != first[0] and other[1] != first[1]
    info = first[2]["run_info"]
    assert info["seed"] == 1234 and info["keras"].startswith("3.") and info["tensorflow"]
    assert info["device"].startswith("CPU: ") and info["time_limit"] == 60


def test_the_harness_takes_the_specs_seed_or_draws_one():
    assert choose_seed({"seed": 7}) == 7 and choose_seed({"seed": 0}) == 0
    for spec in ({}, {"seed": None}, {"seed": -1}, {"seed": MAX_SEED + 1}, {"seed": "7"}, {"seed": True}):
        assert 0 <= choose_seed(spec) <= MAX_SEED


def test_the_job_spec_carries_the_seed(tmp_path, data_dir):
    exercise = catalog_exercise()
    dataset = dataset_paths(data_dir, "synthetic")
    job = _sandbox_job(tmp_path, exercise, dataset, GradingSettings(), limits_for(exercise), uid=0, gpu=None, seed=31)
    assert job.spec["seed"] == 31


def catalog_exercise():
    from paths import PROJECT_ROOT

    from grader.exercises import load_catalog

    return load_catalog(PROJECT_ROOT / "exercises")["cnn-from-scratch"]


def test_a_claimed_job_carries_its_submissions_seed(app):
    ada = make_participant(app)
    make_submission(app, ada, seed=2024)
    with app.app_context():
        assert "cnn-from-scratch" in catalog(app)
    job = DatabaseJobStore(app).claim_next_job("test-worker", 60)
    assert job is not None and job.seed == 2024


def test_the_run_record_gets_the_data_sets_name_and_checksum(tmp_path, data_dir):
    copy = tmp_path / "data" / "synthetic"
    shutil.copytree(data_dir / "synthetic", copy)
    paths = dataset_paths(tmp_path / "data", "synthetic")
    before = dataset_checksum(paths)
    assert before == dataset_checksum(dataset_paths(data_dir, "synthetic")) and len(before) == 64
    result = with_dataset_record(GradeResult(status="done", run_info={"python": "3.11"}), paths)
    assert result.run_info == {"python": "3.11", "dataset": "synthetic", "dataset_checksum": before}
    (copy / "private" / "test_labels.csv").write_text("changed", encoding="utf-8")
    assert dataset_checksum(paths) == before  # the hidden labels are not part of it: it is shown to participants
    with (copy / "public" / "train.csv").open("a", encoding="utf-8") as handle:
        handle.write("extra,0\n")
    assert dataset_checksum(paths) != before
    shutil.rmtree(copy)
    gone = with_dataset_record(GradeResult(status="done"), paths)
    assert gone.run_info["dataset_checksum"] == "unavailable"


def test_the_local_runner_reports_the_seed_and_the_traceback(tmp_path, capsys):
    status = {
        "ok": False,
        "error_kind": "runtime_error",
        "message": "ValueError: nope",
        "traceback": 'Traceback (most recent call last):\n  File "submission.py", line 2\nValueError: nope\n',
        "run_info": {"seed": 555},
        "notes": [],
    }
    (tmp_path / "status.json").write_text(json.dumps(status), encoding="utf-8")
    assert local_runner.report(str(tmp_path), {}) == 1
    printed = capsys.readouterr().out
    assert "seed 555 (run again with --seed 555" in printed
    assert 'File "submission.py", line 2' in printed and "FAILED (runtime_error): ValueError: nope" in printed


def test_the_local_runner_passes_seed_to_the_harness(monkeypatch):
    calls = []
    monkeypatch.setattr(local_runner, "run", lambda *args: calls.append(args) or 0)
    kit = {"title": "t", "time_limit": 30, "image_size": 32, "class_names": ["benign", "malignant"]}
    monkeypatch.setattr(local_runner.json, "load", lambda handle: kit)
    monkeypatch.setattr(local_runner, "open", lambda *a, **k: __import__("io").StringIO("{}"), raising=False)
    assert local_runner.main(["my.py", "--seed", "42"]) == 0
    assert calls[-1][0] == "my.py" and calls[-1][3] == 42
    with pytest.raises(SystemExit):
        local_runner.main(["--seed", "-3"])


SEED_PROBE = "def train(data):\n    print('SEED', data.seed, flush=True)\n    raise ValueError('stop here')\n"


@pytest.mark.slow  # imports TensorFlow in the sandbox
@pytest.mark.sandbox
def test_the_seed_reaches_the_job_through_bubblewrap_and_the_traceback_is_told_once(app, data_dir, tmp_path):
    exercise = catalog(app)["cnn-from-scratch"]
    settings = GradingSettings(sandbox="bwrap", work_dir=tmp_path)
    result = grade(SEED_PROBE, exercise, dataset_paths(data_dir, "synthetic"), settings, uid=61051, seed=8642)
    assert "SEED 8642" in result.log and result.run_info["seed"] == "8642"
    assert result.run_info["keras"] and result.run_info["device"].startswith("CPU")
    assert result.error_kind == "runtime_error" and result.message == "ValueError: stop here"
    assert 'submission.py", line 3, in train' in result.traceback and "harness.py" not in result.traceback
    assert "Traceback" not in result.log and result.log.count("stop here") == 1
