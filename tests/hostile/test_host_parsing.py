"""What the host does with a hostile output folder, without the sandbox: never crash, never follow, never trust."""

from __future__ import annotations

import json
import os

import pytest

from grader.scoring import InvalidPredictions, read_predictions, read_progress, read_status

pytestmark = [pytest.mark.hostile]


def test_an_output_folder_replaced_by_a_symlink_is_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "predictions.csv").write_text("image_id,malignant\na1,0.5\n")
    (elsewhere / "status.json").write_text('{"ok": true}')
    os.symlink(elsewhere, tmp_path / "out")
    with pytest.raises(InvalidPredictions, match="output folder is not a plain directory"):
        read_predictions(tmp_path / "out", ["a1"])
    assert read_status(tmp_path / "out") == {"unreadable": True}
    assert read_progress(tmp_path / "out") == []


def test_an_output_folder_replaced_by_a_file_or_missing(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(InvalidPredictions, match="not a plain directory"):
        read_predictions(tmp_path / "out", ["a1"])
    with pytest.raises(InvalidPredictions, match="no predictions.csv"):
        read_predictions(tmp_path / "missing", ["a1"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000, {"unreadable": True}),
        ('{"ok": true, "notes": 5, "run_info": [1], "message": {"a": 1}}', {"ok": True, "notes": [], "run_info": {}}),
        (
            '{"ok": "yes", "error_kind": "infrastructure"}',
            {"ok": False, "error_kind": "infrastructure", "notes": [], "run_info": {}},
        ),
        (
            '{"ok": false, "run_info": {"big": 1' + "0" * 400 + "}}",
            {"ok": False, "notes": [], "run_info": {"big": "1" + "0" * 299}},
        ),
        ('{"ok": false, "notes": ["a", 1, ["b"]]}', {"ok": False, "notes": ["a"], "run_info": {}}),
    ],
    ids=["nested", "wrong-types", "truthy-ok", "huge-number", "mixed-notes"],
)
def test_status_is_reduced_to_known_keys_of_known_types(tmp_path, text, expected):
    (tmp_path / "status.json").write_text(text)
    assert read_status(tmp_path) == expected


def test_progress_survives_absurd_numbers_and_nesting(tmp_path):
    lines = [
        '{"epoch": 1, "seconds": 1' + "0" * 400 + ', "metrics": {"loss": 1' + "0" * 400 + ', "auc": 0.75}}',
        "[" * 100_000,
        json.dumps({"epoch": 10**12, "metrics": {}}),
        json.dumps({"epoch": 2, "seconds": 1.5, "metrics": {"loss": 0.5, "x" * 100: 1}}),
    ]
    (tmp_path / "progress.jsonl").write_text("\n".join(lines) + "\n")
    assert read_progress(tmp_path) == [
        {"epoch": 1, "seconds": None, "metrics": {"auc": 0.75}},
        {"epoch": 2, "seconds": 1.5, "metrics": {"loss": 0.5, "x" * 40: 1.0}},
    ]
