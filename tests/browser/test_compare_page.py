"""The run record and the compare page in a real browser: a participant reads what their run ran on, picks another
of their submissions in the run record's form and sees both side by side (figures with text alternatives, a coloured
diff), on a desktop and on a 390-px phone without sideways scrolling."""

from __future__ import annotations

import json
import sqlite3

import pytest
from browser_kit import join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

RUN_INFO = {
    "python": "3.11.7",
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
    "device": "CPU: Intel(R) Xeon(R) Processor (2 cores)",
    "dataset": "synthetic",
    "dataset_checksum": "3f" * 32,
    "time_limit": "120.0",
    "seed": "1234",
}
FIGURE = {"roc": [[0, 0], [0.1, 0.5], [0.3, 0.8], [1, 1]], "operating_point": [0.1, 0.5]}
CODE_A = (
    "def train(data):\n    model = small_cnn(data.image_size)\n    model.fit(data.train, epochs=3)\n    return model\n"
)
CODE_B = CODE_A.replace("epochs=3", "epochs=8, validation_data=data.val").replace(
    "    return model",
    "    # a very long comment that must wrap on a phone rather than push the page sideways " * 2
    + "\n    return model",
)


def _history(epochs: int, start: float) -> str:
    return json.dumps(
        [
            {"epoch": n, "seconds": 2.0, "metrics": {"loss": 0.7 - 0.05 * n, "val_auc": start + 0.03 * n}}
            for n in range(1, epochs + 1)
        ]
    )


def _store(tmp_path, name: str, code: str, seed: int, score: float, epochs: int) -> int:
    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    metrics = {"public": {"roc_auc": score, "accuracy": score - 0.1, "count": 20}, "figures": {"public": FIGURE}}
    with sqlite3.connect(database) as connection:
        (participant,) = connection.execute("SELECT id FROM participants WHERE display_name = ?", (name,)).fetchone()
        cursor = connection.execute(
            "INSERT INTO submissions (participant_id, exercise_slug, dataset, code, status, public_score, metrics,"
            " history, run_info, seed, seconds, attempts, created_at, finished_at, final, priority, charged)"
            " VALUES (?, 'cnn-from-scratch', 'synthetic', ?, 'done', ?, ?, ?, ?, ?, 41.5, 1, datetime('now'),"
            " datetime('now'), 0, 0, 1)",
            (participant, code, score, json.dumps(metrics), _history(epochs, score - 0.2), json.dumps(RUN_INFO), seed),
        )
        return cursor.lastrowid


def _no_sideways_scroll(page) -> None:  # noqa: F811
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390


def test_the_run_record_leads_to_a_side_by_side_comparison(live_server, page, tmp_path):  # noqa: F811
    join_in_browser(page, live_server, "Compare Carla")
    first = _store(tmp_path, "Compare Carla", CODE_A, 1234, 0.71, 3)
    second = _store(tmp_path, "Compare Carla", CODE_B, 77, 0.78, 8)
    page.goto(f"{live_server}/submissions/{second}")
    record = page.locator("#run-record")
    for shown in ("Python", "3.11.7", "TensorFlow", "2.21.0", "Keras", "3.15.1", "Xeon", "synthetic", "3f3f3f"):
        assert shown in record.inner_text(), shown
    assert "120 s" in record.inner_text() and "77" in record.inner_text()
    assert page.locator("#run-again").is_visible()
    record.scroll_into_view_if_needed()
    shot(page, "run-record-desktop")

    page.select_option("#compare-with", str(first))
    page.click("#compare-submit")
    page.wait_for_url(lambda address: "/submissions/compare" in address)
    assert page.url.endswith(f"/submissions/compare?a={second}&b={first}")
    assert page.locator("h1").inner_text() == f"Submission #{second} and #{first}"
    assert page.locator("pre.diff .diff-add").count() >= 1 and page.locator("pre.diff .diff-del").count() >= 1
    added = page.locator("pre.diff .diff-add").first
    assert added.evaluate("element => getComputedStyle(element).backgroundColor") != "rgba(0, 0, 0, 0)"
    pictures = page.locator("svg[role=img]")
    assert pictures.count() >= 4  # per side: loss, AUC and the ROC curve
    for index in range(pictures.count()):
        labelled = pictures.nth(index).get_attribute("aria-labelledby").split()
        assert all(page.locator(f"#{ident}").text_content().strip() for ident in labelled)
    assert "-0.0700" in page.locator("table.compare-metrics").inner_text()  # B (0.71) against A (0.78)
    shot(page, "compare-desktop")

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _no_sideways_scroll(page)
    shot(page, "compare-390")
    page.goto(f"{live_server}/submissions/{second}")
    _no_sideways_scroll(page)
    page.locator("#run-record").scroll_into_view_if_needed()
    shot(page, "run-record-390")
