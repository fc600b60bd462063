"""The exercise loader: every exercise of the repository loads, and a broken one names each problem."""

from __future__ import annotations

import pytest
from paths import PROJECT_ROOT

from grader.exercises import ExerciseError, load_catalog, load_exercise


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
    assert load_exercise(folder).gpu_memory_mb is None  # commented out in the example: the GPU's share


def test_gpu_memory_mb_is_read_and_checked(tmp_path):
    folder = tmp_path / "packed"
    folder.mkdir()
    for name in ("README.md", "starter.py", "solution.py"):
        (folder / name).write_text("def train(data): ...\n")
    base = 'title = "T"\norder = 1\nimage_size = 64\ntime_limit = 60\nscore_band = [0.5, 0.9]\n'
    (folder / "exercise.toml").write_text(base + "gpu_memory_mb = 8000\n")
    assert load_exercise(folder).gpu_memory_mb == 8000
    for bad in ("100", '"8 GB"', "true"):
        (folder / "exercise.toml").write_text(base + f"gpu_memory_mb = {bad}\n")
        with pytest.raises(ExerciseError, match="field 'gpu_memory_mb' must be megabytes of GPU memory"):
            load_exercise(folder)


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
