"""Hostile output on the host: predictions.csv parsed strictly, files read without following links."""

from __future__ import annotations

import os

import pytest

from grader.data import HiddenLabels
from grader.scoring import InvalidPredictions, read_predictions, read_progress, read_status, score_predictions

IDS = ["a1", "b2", "c3", "d4"]


def write(folder, text: str, name: str = "predictions.csv"):
    (folder / name).write_text(text, encoding="utf-8")


def test_valid_predictions_are_read(tmp_path):
    write(tmp_path, "image_id,malignant\na1,0.1\nb2,0.9\nc3,0\nd4,1\n")
    assert read_predictions(tmp_path, IDS) == {"a1": 0.1, "b2": 0.9, "c3": 0.0, "d4": 1.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,p\na1,0.1\n", "must start with the header"),
        ("", "must start with the header"),
        ("image_id,malignant\na1,0.1\nb2,0.9\nc3,0.5\n", "lacks 1 of the 4"),
        ("image_id,malignant\na1,0.1\na1,0.2\nc3,0.5\nd4,0.5\n", "appears twice"),
        ("image_id,malignant\nzz,0.1\n", "unknown image id"),
        ("image_id,malignant\na1,nan\n", "finite number in [0, 1]"),
        ("image_id,malignant\na1,inf\n", "finite number in [0, 1]"),
        ("image_id,malignant\na1,1.5\n", "finite number in [0, 1]"),
        ("image_id,malignant\na1,-0.1\n", "finite number in [0, 1]"),
        ("image_id,malignant\na1,high\n", "is not a number"),
        ("image_id,malignant\na1,0.1,extra\n", "expected 2 fields"),
    ],
)
def test_malformed_predictions_say_what_is_wrong(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(InvalidPredictions, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_predictions(tmp_path, IDS)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidPredictions, match="no predictions.csv"):
        read_predictions(tmp_path, IDS)


def test_symlink_is_not_followed(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("image_id,malignant\na1,0.1\nb2,0.9\nc3,0\nd4,1\n")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(secret, out / "predictions.csv")
    with pytest.raises(InvalidPredictions, match="not a regular file"):
        read_predictions(out, IDS)


def test_fifo_does_not_hang_the_host(tmp_path):
    os.mkfifo(tmp_path / "predictions.csv")
    with pytest.raises(InvalidPredictions, match="not a regular file"):
        read_predictions(tmp_path, IDS)


def test_directory_in_place_of_the_file(tmp_path):
    (tmp_path / "predictions.csv").mkdir()
    with pytest.raises(InvalidPredictions, match="not a regular file"):
        read_predictions(tmp_path, IDS)


def test_huge_file_is_refused_without_reading_it(tmp_path):
    with open(tmp_path / "predictions.csv", "wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: large on paper, no disk used
    with pytest.raises(InvalidPredictions, match="too large"):
        read_predictions(tmp_path, IDS)


def test_binary_garbage(tmp_path):
    (tmp_path / "predictions.csv").write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(InvalidPredictions, match="not UTF-8"):
        read_predictions(tmp_path, IDS)


def test_status_and_progress_tolerate_garbage(tmp_path):
    write(tmp_path, "[1, 2]", "status.json")
    assert read_status(tmp_path) == {"unreadable": True}
    write(
        tmp_path,
        '{"epoch": 1, "metrics": {"loss": 0.5, "bad": "x", "nan": NaN}}\nnot json\n{"epoch": "2"}\n',
        "progress.jsonl",
    )
    assert read_progress(tmp_path) == [{"epoch": 1, "seconds": None, "metrics": {"loss": 0.5}}]


def test_scores_per_partition():
    labels = HiddenLabels(
        labels={"a1": 0, "b2": 1, "c3": 0, "d4": 1},
        partition={"a1": "public", "b2": "public", "c3": "private", "d4": "private"},
    )
    metrics = score_predictions({"a1": 0.2, "b2": 0.8, "c3": 0.9, "d4": 0.1}, labels)
    assert metrics["public"]["roc_auc"] == 1.0 and metrics["private"]["roc_auc"] == 0.0
    assert metrics["public"]["accuracy"] == 1.0 and metrics["public"]["count"] == 2
