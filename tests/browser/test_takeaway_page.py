"""The takeaway bundle in a real browser: a participant finds "Take your work home" on the exercises page,
clicks it, and their own zip arrives (with their code and the page on continuing at home)."""

from __future__ import annotations

import sqlite3
import zipfile

import pytest
from browser_kit import join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def _store_submission(tmp_path, name: str) -> int:
    """A finished submission with a history, written straight into the live server's database."""
    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    with sqlite3.connect(database) as connection:
        (participant,) = connection.execute("SELECT id FROM participants WHERE display_name = ?", (name,)).fetchone()
        cursor = connection.execute(
            "INSERT INTO submissions (participant_id, exercise_slug, dataset, code, status, public_score, history,"
            " attempts, created_at, finished_at, final) VALUES (?, 'cnn-from-scratch', 'synthetic', ?, 'done', 0.71,"
            " ?, 1, datetime('now'), datetime('now'), 0)",
            (participant, "def train(data):\n    return 'home-code'\n", '[{"epoch": 1, "loss": 0.6, "val_auc": 0.7}]'),
        )
        return cursor.lastrowid


def test_the_participant_clicks_the_link_and_the_bundle_arrives(live_server, page, tmp_path):  # noqa: F811
    join_in_browser(page, live_server, "Homeward Hana")
    submission = _store_submission(tmp_path, "Homeward Hana")
    page.goto(live_server + "/")
    link = page.locator("#takeaway")
    assert link.inner_text() == "Take your work home"
    link.scroll_into_view_if_needed()
    shot(page, "takeaway-link")
    with page.expect_download() as arrived:
        link.click()
    download = arrived.value
    assert download.suggested_filename.startswith("takeaway-homeward-hana-") and download.failure() is None
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        code = next(name for name in names if name.endswith(f"/submissions/cnn-from-scratch/{submission}-done.py"))
        assert b"home-code" in archive.read(code)
        assert any(name.endswith(f"/curves/cnn-from-scratch/{submission}.png") for name in names)
        assert any(name.endswith("/CONTINUE_AT_HOME.md") for name in names)
        assert any(name.endswith("/exercises/cnn-from-scratch-starter-kit.zip") for name in names)
