"""The instructor's submissions pages over HTTP (/instructor/submissions): filters and pages, one submission in
full with its private figures, the actions (rescore, rerun, cancel, fail, requeue); participants get nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import csrf_token, instructor_login, login_client, make_participant, make_submission

from server.db import new_session
from server.job_store import predictions_path
from server.models import Submission, utcnow
from server.submissions_admin import filtered_submissions

PAGE = "/instructor/submissions/"
PRIVATE_METRICS = {"public": {"roc_auc": 0.61}, "private": {"roc_auc": 0.8765432}}


def _instructor(app):
    client = app.test_client()
    instructor_login(client)
    return client


def _act(client, submission_id: int, action: str):
    page = f"{PAGE}{submission_id}"
    return client.post(f"{page}/action", data={"csrf_token": csrf_token(client, page), "action": action})


def _row(app, submission_id: int) -> Submission:
    with new_session(app) as db:
        row = db.get(Submission, submission_id)
        db.expunge(row)
        return row


@pytest.fixture
def mixed(app):
    """Ada: 60 done on cnn-from-scratch; Bob: one timeout on transfer-learning, one queued on another data set."""
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    ids = {"ada_ids": [make_submission(app, ada, status="done", public_score=0.6) for _ in range(60)]}
    ids["timeout"] = make_submission(app, bob, "transfer-learning", status="failed", error_kind="timeout")
    ids["queued"] = make_submission(app, bob, status="queued", dataset="isic")
    return {"ada": ada, "bob": bob, **ids}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, 62),
        ({"participant": "ada"}, 60),
        ({"exercise": "transfer-learning"}, 1),
        ({"status": "queued"}, 1),
        ({"error_kind": "timeout"}, 1),
        ({"dataset": "isic"}, 1),
        ({"participant": "Bob", "status": "done"}, 0),
    ],
)
def test_the_filters_count_what_they_match(app, mixed, filters, expected):
    with new_session(app) as db:
        assert filtered_submissions(db, filters).total == expected


def test_the_list_pages_by_fifty_and_keeps_the_filters(app, mixed):
    client = _instructor(app)
    first = client.get(PAGE, query_string={"participant": "Ada"}).get_data(as_text=True)
    assert "60 submissions · page 1 of 2" in first and "participant=Ada" in first and "page=2" in first
    second = client.get(PAGE, query_string={"participant": str(mixed["ada"]), "page": 2}).get_data(as_text=True)
    assert "page 2 of 2" in second and second.count(f'href="{PAGE}') >= 10
    timeouts = client.get(PAGE, query_string={"error_kind": "timeout"}).get_data(as_text=True)
    assert "1 submission ·" in timeouts and "transfer-learning" in timeouts


def test_the_detail_page_shows_everything_with_the_private_figures(app):
    submission_id = make_submission(
        app,
        make_participant(app),
        status="failed",
        error_kind="runtime_error",
        error_message="boom <b>",
        traceback="Traceback: ValueError",
        log="epoch 1",
        notes=["a note"],
        run_info={"python": "3.12"},
        metrics=PRIVATE_METRICS,
        private_score=0.8765432,
        code="print('<script>')",
    )
    page = _instructor(app).get(f"{PAGE}{submission_id}").get_data(as_text=True)
    for text in ("0.8765", "Traceback: ValueError", "epoch 1", "a note", "3.12", "&lt;script&gt;", "boom &lt;b&gt;"):
        assert text in page
    assert "<script>" not in page.split("</head>")[1]


def test_participants_get_neither_the_pages_nor_the_actions(app):
    ada = make_participant(app)
    submission_id = make_submission(app, ada, status="done", private_score=0.8765432, metrics=PRIVATE_METRICS)
    predictions_path(app, submission_id).parent.mkdir(parents=True)
    predictions_path(app, submission_id).write_text("image_id,malignant\n")
    client = login_client(app, ada)
    for url in (PAGE, f"{PAGE}{submission_id}", f"{PAGE}{submission_id}/predictions.csv"):
        assert client.get(url).status_code == 403
    assert client.post(f"{PAGE}{submission_id}/action", data={"action": "rerun"}).status_code in (400, 403)
    assert _row(app, submission_id).status == "done"


def test_an_unknown_submission_is_404_for_the_instructor(app):
    client = _instructor(app)
    assert client.get(f"{PAGE}999").status_code == 404
    assert client.get(f"{PAGE}999/predictions.csv").status_code == 404


def test_without_kept_predictions_the_page_says_rerun_and_a_rescore_changes_nothing(app):
    submission_id = make_submission(app, make_participant(app), status="done", public_score=0.7)
    client = _instructor(app)
    assert "none kept (rerun to score again)" in client.get(f"{PAGE}{submission_id}").get_data(as_text=True)
    reply = _act(client, submission_id, "rescore")
    assert reply.status_code == 302
    assert "was not changed" in client.get(reply.location).get_data(as_text=True)
    assert _row(app, submission_id).public_score == 0.7 and not _row(app, submission_id).verdicts


def test_rerun_cancel_and_requeue_from_the_page(app):
    ada = make_participant(app)
    done = make_submission(app, ada, status="done", public_score=0.7)
    waiting = make_submission(app, ada, status="queued")
    stuck = make_submission(app, ada, status="running", lease_expires_at=utcnow() - timedelta(seconds=5))
    client = _instructor(app)
    assert "data-confirm" in client.get(f"{PAGE}{done}").get_data(as_text=True)
    _act(client, done, "rerun")
    assert (_row(app, done).status, _row(app, done).priority, _row(app, done).charged) == ("queued", -1, False)
    _act(client, waiting, "cancel")
    assert _row(app, waiting).status == "cancelled"
    assert "its worker has vanished" in client.get(f"{PAGE}{stuck}").get_data(as_text=True)
    _act(client, stuck, "requeue")
    assert _row(app, stuck).status == "queued" and "worker stopped" in _row(app, stuck).notes[0]
    assert client.post(f"{PAGE}{done}/action", data={"action": "rerun"}).status_code == 400  # no CSRF token
