"""The in-sandbox harness: best-weights bookkeeping, the time budget, live progress, and pretrained weights offline.

The fast tests drive the harness's pieces directly; the slow ones run ``grader/harness.py`` as the sandbox
does (a subprocess with a job spec), without bubblewrap, on the tiny synthetic data set of conftest.
Any download a harness attempts goes to a closed port on loopback (``https_proxy``), never to the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from paths import PROJECT_ROOT

from grader import harness
from grader.grading import GradingSettings, grade
from grader.harness import (
    DownloadUnavailable,
    Notes,
    Output,
    TrainingGuard,
    WeightsCache,
    WeightsUnavailable,
    malignant_probability,
    pick_monitor,
)
from grader.sandbox import HARNESS, SANDBOXES, NoSandbox, SandboxResult
from grader.scoring import read_progress
from grader.weights import STAND_IN_SUFFIX

MOBILENET_96 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"


class FakeModel:
    """Just enough of a keras.Model for the best-weights bookkeeping."""

    def __init__(self, value: float = 0.0):
        self.value = [np.array([value])]

    def get_weights(self):
        return [array.copy() for array in self.value]

    def set_weights(self, weights):
        self.value = [np.asarray(array).copy() for array in weights]


def new_guard(tmp_path, seconds: float = 100.0) -> TrainingGuard:
    return TrainingGuard(Output(str(tmp_path)), Notes(), time.monotonic() + seconds)


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ({"loss": 0.5, "auc": 0.7, "val_loss": 0.6, "val_auc": 0.65}, ("val_auc", "max")),
        ({"loss": 0.5, "val_loss": 0.6, "val_AUC_1": 0.6}, ("val_AUC_1", "max")),
        ({"loss": 0.5, "val_loss": 0.6, "accuracy": 0.9}, ("val_loss", "min")),
        ({"loss": 0.5, "auc": 0.7}, ("auc", "max")),
        ({"loss": 0.5}, ("loss", "min")),
        ({"val_auc": float("nan"), "val_loss": 0.4}, ("val_loss", "min")),
        ({"accuracy": 0.9}, None),
    ],
)
def test_pick_monitor_prefers_validation_auc(logs, expected):
    assert pick_monitor(logs) == expected


def test_guard_restores_the_best_epoch_and_says_so(tmp_path):
    guard, model = new_guard(tmp_path), FakeModel()
    for value, auc in ((1.0, 0.6), (2.0, 0.8), (3.0, 0.7)):
        model.value = [np.array([value])]
        guard.remember(model, {"loss": 0.5, "val_auc": auc}, guard.record_epoch({"val_auc": auc}))
    guard.restore_best(model, current_epoch=3)
    assert model.value[0][0] == 2.0
    assert any("restored the weights of epoch 2" in note and "val_auc 0.8000" in note for note in guard.notes.items)


def test_guard_keeps_the_current_weights_when_they_are_the_best(tmp_path):
    guard, model = new_guard(tmp_path), FakeModel(5.0)
    guard.remember(model, {"val_loss": 0.9}, 1)
    model.value = [np.array([6.0])]
    guard.remember(model, {"val_loss": 0.4}, 2)
    guard.restore_best(model, current_epoch=2)
    assert model.value[0][0] == 6.0 and "predicting with the weights of epoch 2" in guard.notes.items[0]


def test_guard_without_a_finished_epoch_keeps_the_weights(tmp_path):
    guard, model = new_guard(tmp_path), FakeModel(7.0)
    guard.restore_best(model, current_epoch=None)
    assert model.value[0][0] == 7.0 and "no epoch finished" in guard.notes.items[0]


def test_guard_starts_afresh_when_the_monitored_metric_changes(tmp_path):
    guard, model = new_guard(tmp_path), FakeModel(1.0)
    guard.remember(model, {"val_auc": 0.9}, 1)
    model.value = [np.array([2.0])]
    guard.remember(model, {"loss": 3.0}, 2)  # recompiled without validation: val_auc 0.9 is not comparable
    guard.restore_best(model, current_epoch=5)
    assert model.value[0][0] == 2.0


def test_epochs_are_numbered_across_fits_and_readable_by_the_host(tmp_path):
    guard = new_guard(tmp_path)
    guard.record_epoch({"loss": 0.7, "val_auc": np.float32(0.6)}, seconds=1.5)
    guard.record_epoch({"loss": float("inf")})
    history = read_progress(tmp_path)
    assert [record["epoch"] for record in history] == [1, 2]
    assert history[0] == {"epoch": 1, "seconds": 1.5, "metrics": {"loss": 0.7, "val_auc": pytest.approx(0.6)}}
    assert history[1]["metrics"] == {}  # not finite: dropped by the host


def test_seconds_left_counts_down_to_the_deadline(tmp_path):
    assert 9 < new_guard(tmp_path, 10).seconds_left() <= 10
    assert new_guard(tmp_path, -5).seconds_left() == 0


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([[0.1], [0.9]], [0.1, 0.9]), ([[0.8, 0.2], [0.3, 0.7]], [0.2, 0.7]), ([0.4, 0.6], [0.4, 0.6])],
)
def test_malignant_probability_accepts_one_or_two_columns(scores, expected):
    assert malignant_probability(scores, 2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("scores", "message"), [([[0.1, 0.2, 0.7]] * 2, r"\(N, 1\) or \(N, 2\)"), ([[0.5]], "1 predictions for 2")]
)
def test_malignant_probability_rejects_other_shapes(scores, message):
    with pytest.raises(harness.ContractError, match=message):
        malignant_probability(scores, 2)


# --- the offline weights cache, without TensorFlow ----------------------------------------------------------


@pytest.fixture
def weights_source(tmp_path, monkeypatch):
    """A read-only-style weights folder with two files (one marked as a stand-in) and a fresh KERAS_HOME."""
    source = tmp_path / "weights"
    source.mkdir()
    (source / MOBILENET_96).write_bytes(b"pretend h5")
    (source / "efficientnetb0_notop.h5").write_bytes(b"pretend h5")
    (source / ("efficientnetb0_notop.h5" + STAND_IN_SUFFIX)).write_text("stand-in")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home" / ".keras"))
    return source


def cache_for(source, allowed, offline=True) -> WeightsCache:
    spec = {"weights_dir": str(source), "allowed_weights": allowed, "offline": offline}
    cache = WeightsCache(spec, Notes())
    cache.link()
    return cache


MOBILENET_ONLY = [{"architecture": "MobileNetV2", "file": MOBILENET_96}]


def test_only_the_allowed_files_are_linked_into_a_writable_keras_home(weights_source, tmp_path):
    cache = cache_for(weights_source, MOBILENET_ONLY)
    models = tmp_path / "home" / ".keras" / "models"
    assert sorted(os.listdir(models)) == [MOBILENET_96]
    assert os.readlink(models / MOBILENET_96) == str(weights_source / MOBILENET_96)
    origin = f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{MOBILENET_96}"
    assert cache.resolve(MOBILENET_96, origin, "models") == str(models / MOBILENET_96)
    assert cache.resolve(None, origin, "models") == str(models / MOBILENET_96)  # name taken from the URL
    assert cache.notes.items == []


def test_a_stand_in_file_is_served_with_a_note(weights_source):
    cache = cache_for(weights_source, None)  # no list in the spec: every prepared file
    assert cache.resolve("efficientnetb0_notop.h5", "https://example.invalid/x.h5", "models").endswith("notop.h5")
    assert "stand-in" in cache.notes.items[0] and "not ImageNet" in cache.notes.items[0]


def test_a_prepared_but_disallowed_file_names_what_the_exercise_offers(weights_source):
    cache = cache_for(weights_source, MOBILENET_ONLY)
    with pytest.raises(WeightsUnavailable, match="efficientnetb0_notop.h5 is not allowed") as caught:
        cache.resolve("efficientnetb0_notop.h5", "https://example.invalid/efficientnetb0_notop.h5", "models")
    assert f"MobileNetV2 ({MOBILENET_96})" in str(caught.value)


def test_an_exercise_without_weights_says_to_use_weights_none(weights_source):
    with pytest.raises(WeightsUnavailable, match="allows no pretrained weights.*weights=None"):
        cache_for(weights_source, []).resolve(MOBILENET_96, "https://example.invalid/m.h5", "models")


def test_a_missing_allowed_file_names_it_and_the_command(weights_source):
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    cache = cache_for(weights_source, [{"architecture": "MobileNetV2", "file": name}])
    with pytest.raises(WeightsUnavailable) as caught:
        cache.resolve(name, f"https://example.invalid/{name}", "models")
    assert name in str(caught.value) and "workshop prepare-weights" in str(caught.value)


def test_other_downloads_say_there_is_no_network(weights_source):
    with pytest.raises(DownloadUnavailable, match="no network"):
        cache_for(weights_source, None).resolve("mnist.npz", "https://example.invalid/mnist.npz", "datasets")


def test_outside_the_sandbox_keras_downloads_as_usual(weights_source):
    cache = cache_for(weights_source, MOBILENET_ONLY, offline=False)
    assert cache.resolve("other.h5", "https://example.invalid/other.h5", "models") is None


def test_grading_tells_the_harness_which_weights_the_exercise_allows(tmp_path, data_dir, monkeypatch):
    from grader.data import dataset_paths
    from grader.exercises import load_exercise

    seen = {}

    class Recorder(NoSandbox):
        def run(self, job, on_poll=None):
            seen.update(job.spec)
            return SandboxResult(exit_code=1, timed_out=False, out_of_memory=False, log="", log_bytes=0, seconds=0)

    monkeypatch.setitem(SANDBOXES, "recorder", Recorder)
    exercise = load_exercise(PROJECT_ROOT / "exercises" / "transfer-learning")
    dataset = dataset_paths(data_dir, "synthetic")
    grade("def train(data): ...\n", exercise, dataset, GradingSettings(sandbox="recorder", work_dir=tmp_path))
    assert seen["allowed_weights"] == [{"architecture": "MobileNetV2", "file": MOBILENET_96}]
    assert seen["time_limit"] == exercise.time_limit and seen["predict_reserve_seconds"] > 0


# --- the harness as the sandbox runs it -------------------------------------------------------------------------


def run_harness(tmp_path: Path, data_dir: Path, code: str, **spec_options) -> dict:
    """Run grader/harness.py on ``code`` like a sandbox backend does; returns status, history, log."""
    code_dir, out_dir, home = tmp_path / "code", tmp_path / "out", tmp_path / "home"
    for folder in (code_dir, out_dir, home):
        folder.mkdir(exist_ok=True)
    (code_dir / "submission.py").write_text(code, encoding="utf-8")
    spec = {
        "image_size": 32,
        "time_limit": 60,
        "predict_reserve_seconds": 4,
        "class_names": ["benign", "malignant"],
        "module": "submission",
        "code_dir": str(code_dir),
        "data_dir": str(data_dir / "synthetic" / "public"),
        "out_dir": str(out_dir),
        "weights_dir": None,
        **spec_options,
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "KERAS_HOME": str(home / ".keras"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "https_proxy": "http://127.0.0.1:9",  # an accidental download fails at once, on loopback
        "http_proxy": "http://127.0.0.1:9",
    }
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-I", "-B", str(HARNESS), str(tmp_path / "spec.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=spec["time_limit"] + 60,
        check=False,
    )
    status = json.loads((out_dir / "status.json").read_text())
    return {
        "status": status,
        "history": read_progress(out_dir),
        "predictions": (out_dir / "predictions.csv").is_file(),
        "log": process.stdout + process.stderr,
        "seconds": time.monotonic() - started,
    }


SMALL_MODEL = """
import keras
from keras import layers

def small_model(size):
    model = keras.Sequential([
        keras.Input((size, size, 3)), layers.Rescaling(1 / 255), layers.Conv2D(4, 3, activation="relu"),
        layers.GlobalAveragePooling2D(), layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    return model
"""

ENDLESS_EPOCHS = (
    SMALL_MODEL
    + """
def train(data):
    model = small_model(data.image_size)
    model.fit(data.train, validation_data=data.val, epochs=100000)
    model.fit(data.train, epochs=3)  # after the cut: returns at once
    return model
"""
)

ENDLESS_FIRST_EPOCH = (
    SMALL_MODEL
    + """
def train(data):
    model = small_model(data.image_size)
    model.fit(data.train.repeat(), validation_data=data.val, epochs=2, steps_per_epoch=10**9)
    return model
"""
)

SLOW_FOURTH_EPOCH = (
    SMALL_MODEL
    + """
import time

class SlowFromEpochFour(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= 3:
            time.sleep(2)  # the fourth epoch would take 40 s, far more than is left

def train(data):
    model = small_model(data.image_size)
    model.fit(data.train.repeat(), validation_data=data.val, epochs=50, steps_per_epoch=20,
              callbacks=[SlowFromEpochFour()])
    return model
"""
)

CUSTOM_LOOP = (
    SMALL_MODEL
    + """
def train(data):
    model = small_model(data.image_size)
    for epoch in range(3):
        for images, labels in data.train:
            loss = model.train_on_batch(images, labels)
        data.log_epoch(loss=float(loss[0] if isinstance(loss, list) else loss), seconds_left=data.seconds_left())
    return model
"""
)


@pytest.mark.slow
def test_endless_training_is_stopped_between_epochs_and_scored(tmp_path, data_dir):
    run = run_harness(tmp_path, data_dir, ENDLESS_EPOCHS, time_limit=30, predict_reserve_seconds=5)
    status, notes = run["status"], " | ".join(run["status"]["notes"])
    assert status["ok"] and run["predictions"], run["log"][-3000:]
    assert "training was cut short" in notes and "skipped a call to model.fit" in notes
    assert "restored the weights of epoch" in notes or "predicting with the weights of epoch" in notes
    assert len(run["history"]) >= 2 and "val_auc" in run["history"][0]["metrics"]
    assert status["seconds"] < 30  # the reserve was kept for predicting


@pytest.mark.slow
def test_an_epoch_too_long_for_the_time_is_stopped_in_the_middle(tmp_path, data_dir):
    run = run_harness(tmp_path, data_dir, ENDLESS_FIRST_EPOCH, time_limit=25, predict_reserve_seconds=5)
    notes = " | ".join(run["status"]["notes"])
    assert run["status"]["ok"] and run["predictions"], run["log"][-3000:]
    assert "in the middle of an epoch" in notes and "no epoch finished" in notes
    assert run["history"] == [] and run["status"]["seconds"] < 25


@pytest.mark.slow
def test_a_slow_epoch_is_stopped_validated_and_the_best_weights_kept(tmp_path, data_dir):
    run = run_harness(tmp_path, data_dir, SLOW_FOURTH_EPOCH, time_limit=25, predict_reserve_seconds=5)
    notes = " | ".join(run["status"]["notes"])
    assert run["status"]["ok"] and run["predictions"], run["log"][-3000:]
    assert "in the middle of an epoch" in notes
    assert "restored the weights of epoch" in notes or "predicting with the weights of epoch 4" in notes
    # three full epochs and the partial fourth, validated before comparing it with the best
    assert len(run["history"]) == 4 and "val_auc" in run["history"][-1]["metrics"]


@pytest.mark.slow
def test_a_custom_loop_reports_its_epochs_live(tmp_path, data_dir):
    run = run_harness(tmp_path, data_dir, CUSTOM_LOOP)
    assert run["status"]["ok"], run["log"][-3000:]
    assert [record["epoch"] for record in run["history"]] == [1, 2, 3]
    assert set(run["history"][0]["metrics"]) == {"loss", "seconds_left"}


PRETRAINED = """
import keras
from keras import layers
from keras.applications import {module}

def train(data):
    size = data.image_size
    base = {module}.{architecture}(input_shape=(size, size, 3), include_top=False, weights="imagenet")
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = base({module}.preprocess_input(inputs), training=False)
    outputs = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(data.train, epochs=1)
    return model
"""


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory, data_dir) -> Path:
    """Stand-ins of MobileNetV2 (96 px, no Keras hash) and EfficientNetB0 (a Keras hash they fail)."""
    from grader.data import dataset_paths, load_images

    folder = tmp_path_factory.mktemp("keras") / "models"
    images = load_images(dataset_paths(data_dir, "synthetic").images("train"))
    script = (
        "import sys, numpy as np; from pathlib import Path; from grader.weights import weights_file, write_stand_in\n"
        "images = np.load(sys.argv[2])\n"
        "for name in ('MobileNetV2', 'EfficientNetB0'):\n"
        "    write_stand_in(weights_file(name, 96), Path(sys.argv[1]), calibration_images=images)\n"
    )
    np.save(folder.parent / "calibration.npy", np.asarray(images[:32]))
    # in a subprocess: TensorFlow stays out of the pytest process
    subprocess.run(
        [sys.executable, "-c", script, str(folder), str(folder.parent / "calibration.npy")],
        check=True,
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    ("architecture", "module", "file"),
    [("MobileNetV2", "mobilenet_v2", MOBILENET_96), ("EfficientNetB0", "efficientnet", "efficientnetb0_notop.h5")],
)
def test_imagenet_weights_load_offline_from_the_prepared_folder(
    tmp_path, data_dir, stand_in_weights, architecture, module, file
):
    code = PRETRAINED.format(module=module, architecture=architecture)
    allowed = [{"architecture": architecture, "file": file}]
    weights = {"weights_dir": str(stand_in_weights), "allowed_weights": allowed}
    run = run_harness(tmp_path, data_dir, code, image_size=96, **weights)
    assert run["status"]["ok"] and run["predictions"], run["log"][-3000:]
    assert any(file in note and "stand-in" in note for note in run["status"]["notes"])
    assert "Downloading data from" not in run["log"]


@pytest.mark.slow
def test_missing_weights_fail_with_the_file_and_the_command(tmp_path, data_dir, stand_in_weights):
    code = PRETRAINED.format(module="mobilenet_v2", architecture="MobileNetV2")
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    allowed = [{"architecture": "MobileNetV2", "file": name}]
    weights = {"weights_dir": str(stand_in_weights), "allowed_weights": allowed}
    run = run_harness(tmp_path, data_dir, code, image_size=128, **weights)
    status = run["status"]
    assert not status["ok"] and status["error_kind"] == "runtime_error"
    assert status["message"].startswith("WeightsUnavailable") and name in status["message"]
    assert "workshop prepare-weights" in status["message"]
    assert "Downloading data from" not in run["log"] and "URL fetch failure" not in run["log"]


@pytest.mark.slow
def test_weights_an_exercise_does_not_allow_are_refused(tmp_path, data_dir, stand_in_weights):
    code = PRETRAINED.format(module="efficientnet", architecture="EfficientNetB0")
    run = run_harness(tmp_path, data_dir, code, image_size=96, weights_dir=str(stand_in_weights), allowed_weights=[])
    assert not run["status"]["ok"]
    assert "allows no pretrained weights" in run["status"]["message"]
    assert "efficientnetb0_notop.h5" in run["status"]["message"]
