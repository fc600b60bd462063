"""The all-submissions pages in a real browser: the instructor filters the list, opens a submission with its
private figures and kept predictions, and rescores it after confirming."""

from __future__ import annotations

import pytest
from browser_kit import instructor_in_browser, live_server, page, shot  # noqa: F401
from factories import make_participant, make_submission

from grader.data import dataset_paths, read_test_ids
from grader.grading import write_predictions
from server import create_app
from server.kept import predictions_path, share_with_web_group

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def _seed(live_env, monkeypatch, data_dir):
    """Two participants' finished submissions in the live server's database; the first keeps its predictions."""
    for key in ("WORKSHOP_INSTANCE_PATH", "WORKSHOP_DATA_DIR"):
        monkeypatch.setenv(key, live_env[key])
    app = create_app()
    ada, bob = make_participant(app, "Ada Lovelace"), make_participant(app, "Bob Babbage")
    kept = make_submission(app, ada, status="done", public_score=0.5, private_score=0.5, seconds=12.5)
    make_submission(app, bob, "transfer-learning", status="failed", error_kind="timeout", error_message="stopped")
    ids = read_test_ids(dataset_paths(data_dir, "synthetic"))
    write_predictions({image_id: i / len(ids) for i, image_id in enumerate(ids)}, predictions_path(app, kept))
    share_with_web_group(predictions_path(app, kept))  # as the worker slot does once a job is graded
    return app, kept


def test_instructor_filters_opens_and_rescores(live_server, live_env, page, monkeypatch, data_dir):  # noqa: F811
    app, kept = _seed(live_env, monkeypatch, data_dir)
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/")
    page.click("#all-submissions")
    assert "2 submissions" in page.inner_text("#match-count")
    page.select_option("select[name=error_kind]", "timeout")
    page.click("#apply-filters")
    page.wait_for_url("**error_kind=timeout**")
    assert "1 submission" in page.inner_text("#match-count") and "Bob Babbage" in page.inner_text("#submissions")
    shot(page, "submissions-filtered")
    page.goto(f"{live_server}/instructor/submissions/?participant=Ada+Lovelace")
    page.click(f"#submissions a[href$='/{kept}']")
    assert "0.5000" in page.inner_text("#scores")
    page.once("dialog", lambda dialog: dialog.accept())  # served as root: the web user reads what root kept
    page.click("#rescore-button")
    page.wait_for_selector("text=rescored from its kept predictions")
    assert "rescored" in page.inner_text("#verdicts") and "private" in page.inner_text("#metrics")
    assert "0.5000" not in page.inner_text("#scores")
    shot(page, "submission-rescored")
