"""The transfer-learning curriculum: the five exercises, their weights, `exercises check`, `prepare-weights`, the kit.

Fast tests read the exercise folders and drive the check with a stand-in for ``grade``; slow ones use
TensorFlow (the weights registry against Keras's own code, the local runner of the starter kit); the
slowest runs every reference solution and starter through the real sandbox, with stand-in weights.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from paths import PROJECT_ROOT

from grader.curriculum import CheckResult, check_curriculum, curriculum_ok, format_table
from grader.data import dataset_paths, read_test_ids
from grader.exercises import ExerciseError, load_catalog, load_exercise
from grader.grading import GradeResult, GradingSettings
from grader.metrics import MIN_TPR
from grader.starter_kit import build_starter_kit, sample_rows
from grader.weights import ARCHITECTURES, MOBILENET_V2_SIZES, catalog_weights, exercise_weights, weights_file

CURRICULUM = ["cnn-from-scratch", "transfer-learning", "fine-tuning", "imbalanced-data", "open-challenge"]
# what a random guess scores on each leaderboard metric the exercises use: the diagonal ROC curve's area, and
# its area above 80 % sensitivity (a triangle of 0.2 x 0.2 / 2)
CHANCE = {"roc_auc": 0.5, "pauc_80": (1 - MIN_TPR) ** 2 / 2}


@pytest.fixture(scope="module")
def exercises():
    return load_catalog(PROJECT_ROOT / "exercises")


def test_the_curriculum_is_five_exercises_in_order(exercises):
    assert list(exercises) == CURRICULUM
    assert [exercise.order for exercise in exercises.values()] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("slug", CURRICULUM)
def test_each_exercise_explains_itself(exercises, slug):
    readme = exercises[slug].readme
    assert readme.startswith("# ")
    assert "## What to do" in readme or "## Ideas" in readme
    assert "## What to expect" in readme
    assert "## Hints" in readme or "## Plan with the clock" in readme


@pytest.mark.parametrize("slug", CURRICULUM)
@pytest.mark.parametrize("kind", ["starter", "solution"])
def test_code_uses_only_the_pretrained_networks_its_exercise_allows(exercises, slug, kind):
    exercise = exercises[slug]
    code = getattr(exercise, kind)
    tree = ast.parse(code)
    assert any(isinstance(node, ast.FunctionDef) and node.name == "train" for node in tree.body)
    used = {name for name in ARCHITECTURES if re.search(rf"\b{name}\b", code)}
    assert used <= set(exercise.allowed_weights), f"{slug}/{kind}.py uses {used - set(exercise.allowed_weights)}"
    if kind == "solution" and exercise.allowed_weights:
        assert 'weights="imagenet"' in code


def test_pretrained_exercises_use_a_size_keras_has_weights_for(exercises):
    for exercise in exercises.values():
        if "MobileNetV2" in exercise.allowed_weights:
            assert exercise.image_size in MOBILENET_V2_SIZES, exercise.slug
        for item in exercise_weights(exercise):
            assert item.input_size == exercise.image_size


def test_prepare_weights_fetches_each_file_once(exercises):
    names = [item.file_name for item in catalog_weights(exercises.values())]
    assert names == sorted(set(names))
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in names
    assert "efficientnetb0_notop.h5" in names


def test_mobilenet_v2_falls_back_to_the_224_file_like_keras():
    assert weights_file("MobileNetV2", 100).file_name.endswith("_1.0_224_no_top.h5")
    assert weights_file("MobileNetV2", 160).file_name.endswith("_1.0_160_no_top.h5")


def test_the_loader_rejects_unknown_weights(tmp_path):
    folder = tmp_path / "bad-weights"
    folder.mkdir()
    for name in ("README.md", "starter.py", "solution.py"):
        (folder / name).write_text("def train(data): ...\n")
    (folder / "exercise.toml").write_text(
        'title = "x"\norder = 1\nimage_size = 96\ntime_limit = 60\nscore_band = [0.5, 1]\n'
        'allowed_weights = ["MobileNetV2", "ResNet9000"]\n'
    )
    with pytest.raises(ExerciseError, match="unknown Keras application 'ResNet9000'"):
        load_exercise(folder)


# --- the check, with a stand-in for grading ---------------------------------------------------------------


def fake_grade(scores: dict[tuple[str, str], float | None]):
    """A ``grade`` that answers from a table keyed by (slug, 'solution'|'starter'); None means a failed job."""

    def grade(code, exercise, dataset, settings, **options):
        graded_with.append(settings)
        kind = "solution" if code == exercise.solution else "starter"
        score = scores[(exercise.slug, kind)]
        if score is None:
            return GradeResult(status="failed", error_kind="timeout", message="stopped after 190 s", seconds=190.0)
        return GradeResult(status="done", public_score=score, private_score=score - 0.01, seconds=42.0)

    graded_with: list[GradingSettings] = []
    grade.graded_with = graded_with  # the settings of every call, in order
    return grade


def test_check_judges_solutions_against_their_band_and_starters_on_running(exercises, tmp_path):
    chosen = [exercises["cnn-from-scratch"], exercises["transfer-learning"]]
    low, high = exercises["transfer-learning"].score_band
    table = {
        ("cnn-from-scratch", "solution"): 0.85,
        ("cnn-from-scratch", "starter"): 0.55,
        ("transfer-learning", "solution"): low - 0.05,
        ("transfer-learning", "starter"): None,
    }
    results = check_curriculum(
        chosen, dataset_paths(tmp_path, "synthetic"), GradingSettings(), starters=True, grade_file=fake_grade(table)
    )
    assert [(result.slug, result.kind, result.verdict) for result in results] == [
        ("cnn-from-scratch", "solution", "in band"),
        ("cnn-from-scratch", "starter", "ran"),
        ("transfer-learning", "solution", "below band"),
        ("transfer-learning", "starter", "failed"),
    ]
    assert not curriculum_ok(results) and curriculum_ok(results[:2])
    text = format_table(results)
    assert "below band" in text and "transfer-learning starter: timeout: stopped after 190 s" in text
    assert "MobileNetV2 (missing)" in text  # no weights folder was given


def test_a_score_above_the_band_is_reported_too(exercises, tmp_path):
    exercise = exercises["cnn-from-scratch"]
    result = CheckResult(exercise.slug, "solution", "done", 0.99, 0.98, (0.7, 0.9), 10.0, exercise.time_limit)
    assert result.verdict == "above band" and not result.ok
    assert result.as_dict()["band"] == [0.7, 0.9] and result.as_dict()["ok"] is False


def test_cli_check_prints_a_table_and_exits_1_on_a_miss(runner, monkeypatch):
    import grader.curriculum

    scores = {(slug, kind): 0.9 for slug in CURRICULUM for kind in ("solution", "starter")}
    scores[("fine-tuning", "solution")] = 0.6
    monkeypatch.setattr(grader.curriculum, "grade", fake_grade(scores))
    result = runner.invoke(args=["exercises", "check", "cnn-from-scratch", "fine-tuning"])
    assert result.exit_code == 1, result.output
    assert re.search(r"cnn-from-scratch\s+solution\s+0\.900", result.output)
    assert re.search(r"fine-tuning\s+solution\s+0\.600.*below band", result.output)
    assert "curriculum NOT OK" in result.output


def test_cli_check_json_runs_starters_and_exits_0_when_all_fit(runner, monkeypatch):
    import grader.curriculum

    bands = {slug: exercise.score_band for slug, exercise in load_catalog(PROJECT_ROOT / "exercises").items()}
    # the middle of each band (the open challenge ranks by pauc_80, whose band lies within 0 to 0.2)
    scores = {(slug, kind): sum(bands[slug]) / 2 for slug in CURRICULUM for kind in ("solution", "starter")}
    monkeypatch.setattr(grader.curriculum, "grade", fake_grade(scores))
    result = runner.invoke(args=["exercises", "check", "--starters", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and len(report["results"]) == 10
    assert {row["verdict"] for row in report["results"]} == {"in band", "ran"}


def test_cli_check_names_unknown_exercises(runner):
    result = runner.invoke(args=["exercises", "check", "no-such-exercise"])
    assert result.exit_code != 0 and "no-such-exercise" in result.output


def test_cli_prepare_weights_reports_a_failed_download(runner, app, monkeypatch):
    import grader.weights

    def offline(items, models_dir, **options):
        error = "Exception: URL fetch failure on https://storage.googleapis.com/...: None -- no network"
        return [
            grader.weights.PreparedFile(item, Path(models_dir) / item.file_name, "failed", error=error)
            for item in items
        ]

    monkeypatch.setattr(grader.weights, "prepare_weights", offline)
    result = runner.invoke(args=["prepare-weights"])
    assert result.exit_code == 1
    assert "efficientnetb0_notop.h5" in result.output and "URL fetch failure" in result.output


def test_cli_stand_ins_never_replace_real_weights(runner, app):
    from grader.weights import catalog_weights
    from server.catalog import catalog

    models = Path(app.config["KERAS_HOME"]) / "models"
    models.mkdir(parents=True)
    with app.app_context():
        files = catalog_weights(catalog().values())
    for item in files:
        (models / item.file_name).write_bytes(b"real weights")
    result = runner.invoke(args=["prepare-weights", "--stand-in"])
    assert result.exit_code == 0, result.output
    assert result.output.count("(real weights, kept)") == len(files)
    assert all((models / item.file_name).read_bytes() == b"real weights" for item in files)
    assert not list(models.glob("*.stand-in"))


# --- the starter kit ------------------------------------------------------------------------------------------


def open_kit(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as kit:
        return {name: kit.read(name) for name in kit.namelist()}


def test_sample_rows_are_stratified_and_deterministic():
    labels = np.array([0] * 90 + [1] * 10)
    rows = sample_rows(labels, 20, seed=3)
    assert len(rows) == 20 and labels[rows].sum() == 2
    assert np.array_equal(rows, sample_rows(labels, 20, seed=3))


def test_the_kit_holds_the_exercise_and_labelled_samples_but_nothing_of_the_test_split(exercises, data_dir):
    dataset = dataset_paths(data_dir, "synthetic")
    files = open_kit(build_starter_kit(exercises["transfer-learning"], dataset, sample_size=40))
    folder = "transfer-learning-starter-kit/"
    assert sorted(name.removeprefix(folder) for name in files) == sorted(
        [
            "starter.py",
            "README.md",
            "README_LOCAL.md",
            "run_local.py",
            "harness.py",
            "kit.json",
            "data/train.npy",
            "data/train.csv",
            "data/val.npy",
            "data/val.csv",
        ]
    )
    assert files[folder + "starter.py"].decode() == exercises["transfer-learning"].starter
    assert files[folder + "harness.py"] == (PROJECT_ROOT / "grader" / "harness.py").read_bytes()
    counts = {}
    for split in ("train", "val"):
        rows = list(csv.DictReader(io.StringIO(files[f"{folder}data/{split}.csv"].decode())))
        images = np.load(io.BytesIO(files[f"{folder}data/{split}.npy"]), allow_pickle=False)
        assert len(images) == len(rows) and images.dtype == np.uint8
        assert {row["label"] for row in rows} == {"0", "1"}
        counts[split] = len(rows)
    assert sum(counts.values()) == 40
    test_ids = set(read_test_ids(dataset))
    everything = b"".join(files.values()).decode("latin-1")
    assert not any(test_id in everything for test_id in test_ids)
    assert json.loads(files[folder + "kit.json"])["allowed_weights"] == ["MobileNetV2"]


def test_the_local_runner_scores_like_the_server():
    from sklearn.metrics import roc_auc_score

    from grader.local_runner import halves, roc_auc

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200).tolist()
    scores = np.round(rng.random(200), 1).tolist()  # with ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    first, second = halves(np.array([0, 1] * 10 + [0] * 5))
    assert len(set(first) | set(second)) == 25 and not set(first) & set(second)


def unzip_kit(exercises, data_dir, tmp_path, slug="cnn-from-scratch", sample_size=120) -> Path:
    blob = build_starter_kit(exercises[slug], dataset_paths(data_dir, "synthetic"), sample_size=sample_size)
    with zipfile.ZipFile(io.BytesIO(blob)) as kit:
        kit.extractall(tmp_path)
    return tmp_path / f"{slug}-starter-kit"


def test_the_local_runner_shows_the_images(exercises, data_dir, tmp_path):
    kit = unzip_kit(exercises, data_dir, tmp_path)
    result = subprocess.run(
        [sys.executable, "run_local.py", "--look"], cwd=kit, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (kit / "examples.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.slow
def test_the_local_runner_trains_the_starter_with_the_servers_harness(exercises, data_dir, tmp_path):
    kit = unzip_kit(exercises, data_dir, tmp_path)
    (kit / "broken.py").write_text("def train(data):\n    raise ValueError('not yet')\n")
    trained = subprocess.run(
        [sys.executable, "run_local.py", "--time-limit", "60"], cwd=kit, capture_output=True, text=True, check=False
    )
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    assert re.search(r"local ROC AUC \d\.\d{3} on \d+ held-back sample images", trained.stdout)
    assert re.search(r"Epoch 1/\d", trained.stdout) and "[data.log] one batch" in trained.stdout
    broken = subprocess.run(
        [sys.executable, "run_local.py", "broken.py"], cwd=kit, capture_output=True, text=True, check=False
    )
    assert broken.returncode == 1 and "FAILED (runtime_error): ValueError: not yet" in broken.stdout


# --- weights: Keras's names and the prepare step ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_the_registry_matches_what_keras_asks_for(architecture):
    """Build each application with weights="imagenet" and record Keras's download request instead of loading."""
    import keras
    from keras.src.utils import file_utils

    item = weights_file(architecture, 96)
    requests = []

    class Recorded(Exception):
        pass

    def record(fname=None, origin=None, *args, **kwargs):
        requests.append((fname, origin, kwargs.get("file_hash"), kwargs.get("cache_subdir")))
        raise Recorded

    original = file_utils.get_file
    file_utils.get_file = record
    try:
        with pytest.raises(Recorded):
            getattr(keras.applications, architecture)(input_shape=(96, 96, 3), include_top=False, weights="imagenet")
    finally:
        file_utils.get_file = original
    assert requests == [(item.file_name, item.url, item.file_hash, "models")]


@pytest.mark.slow
def test_prepare_weights_downloads_verifies_and_reports_failures(tmp_path):
    import keras

    from grader.weights import STAND_IN_SUFFIX, fetch_weights, prepare_weights, write_stand_in

    models = tmp_path / "models"
    small = weights_file("MobileNetV3Small", 96)
    broken = weights_file("EfficientNetB0", 96)

    def fake_download(item, folder):
        if item is broken:
            raise OSError("URL fetch failure: no network")
        path = write_stand_in(item, folder)  # what a download would leave, then unmark it
        (folder / (item.file_name + STAND_IN_SUFFIX)).unlink()
        return path

    first = prepare_weights([small, broken], models, fetch=fake_download)
    assert [(result.action, result.item.architecture) for result in first] == [
        ("downloaded", "MobileNetV3Small"),
        ("failed", "EfficientNetB0"),
    ]
    assert first[0].parameters > 0 and len(first[0].sha256) == 64 and "no network" in first[1].error
    assert prepare_weights([small], models, fetch=fake_download)[0].action == "present"

    # a stand-in never passes for the real file: fetching replaces it, through Keras's get_file
    write_stand_in(small, models)
    calls = []

    def keras_get_file(fname, origin, file_hash=None, cache_subdir="datasets", cache_dir=None):
        calls.append((fname, origin, file_hash))
        assert not (models / fname).exists()  # the stand-in was removed first
        (Path(cache_subdir) / fname).write_bytes(b"downloaded")
        return str(Path(cache_subdir) / fname)

    original = keras.utils.get_file
    keras.utils.get_file = keras_get_file
    try:
        path = fetch_weights(small, models)
    finally:
        keras.utils.get_file = original
    assert calls == [(small.file_name, small.url, small.file_hash)]
    assert path.read_bytes() == b"downloaded" and not (models / (small.file_name + STAND_IN_SUFFIX)).exists()


# --- the whole curriculum through the real sandbox ------------------------------------------------------------


@pytest.fixture(scope="module")
def curriculum_instance(tmp_path_factory):
    """A smaller synthetic set than the default (CI time), with stand-in weights calibrated on it."""
    from grader.data.synth import generate_synthetic

    root = tmp_path_factory.mktemp("curriculum")
    generate_synthetic(dataset_paths(root / "data", "synthetic"), seed=7, train=300, val=80, test=200, size=96)
    prepared = workshop(root, "prepare-weights", "--stand-in")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    return root


def workshop(instance: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The `workshop` command on ``instance``, with the real (bwrap) sandbox."""
    env = {**os.environ, "WORKSHOP_INSTANCE_PATH": str(instance), "WORKSHOP_SANDBOX": "bwrap"}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.slow
@pytest.mark.sandbox
def test_every_reference_solution_runs_in_the_sandbox_with_stand_in_weights(curriculum_instance):
    """``prepare-weights --stand-in`` then ``exercises check --json``, as an instructor would run them (~5 min).

    The score bands hold for the default data set with the real ImageNet weights. Here the data set is
    smaller (CI time) and the weights are random-init stand-ins, so the test asserts what must hold
    anyway: every reference runs to a score better than guessing, within its time limit, loading its
    weights offline, and the check judges it against its band and sets the exit code from the verdicts.
    """
    checked = workshop(curriculum_instance, "exercises", "check", "--json", timeout=540)
    report = json.loads(checked.stdout)
    print(format_table([CheckResult(**row_fields(row)) for row in report["results"]]))  # shown in CI logs
    assert checked.returncode == (0 if report["ok"] else 1)
    rows = {row["slug"]: row for row in report["results"]}
    exercises = load_catalog(PROJECT_ROOT / "exercises")
    assert list(rows) == CURRICULUM and all(row["kind"] == "solution" for row in rows.values())
    for slug, row in rows.items():
        assert row["status"] == "done", (slug, row["error"])
        assert row["seconds"] < row["time_limit"], (slug, row["seconds"])
        assert row["verdict"] in ("in band", "below band", "above band")
        chance = CHANCE[exercises[slug].metric]  # what guessing scores on the exercise's leaderboard metric
        assert (row["public_score"] + row["private_score"]) / 2 > chance, (slug, row)
        assert not any("cut short" in note for note in row["notes"]), (slug, row["notes"])
    for slug in CURRICULUM[1:]:
        assert rows[slug]["weights"] and all("stand-in" in fact for fact in rows[slug]["weights"]), slug
        assert any("stand-in" in note for note in rows[slug]["notes"]), slug  # the job said so too


def row_fields(row: dict) -> dict:
    fields = {key: row[key] for key in CheckResult.__dataclass_fields__}
    return {**fields, "band": tuple(fields["band"])}


@pytest.fixture(scope="module")
def stand_in_models(tmp_path_factory, data_dir) -> Path:
    folder = tmp_path_factory.mktemp("keras") / "models"
    instance = folder.parent
    (instance / "data").symlink_to(data_dir, target_is_directory=True)
    prepared = workshop(instance, "prepare-weights", "--stand-in")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    return instance / "keras" / "models"


@pytest.mark.slow
@pytest.mark.parametrize("slug", CURRICULUM)
def test_every_starter_runs_as_it_is(exercises, slug, stand_in_models, data_dir, tmp_path):
    """The starters on the tiny data set, through grading without bubblewrap (the references cover the sandbox)."""
    from grader.grading import grade

    exercise = exercises[slug]
    result = grade(
        exercise.starter,
        exercise,
        dataset_paths(data_dir, "synthetic"),
        GradingSettings(sandbox="none", work_dir=tmp_path, weights_dir=stand_in_models),
    )
    assert result.status == "done", (result.error_kind, result.message, result.log[-2000:])
    assert 0.0 <= result.public_score <= 1.0 and result.history
