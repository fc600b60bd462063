"""The final selection holds under concurrency: two finals per exercise at most, even when marked at once."""

from __future__ import annotations

import threading

from factories import make_participant, make_submission

from server.db import new_session
from server.models import Submission


def test_marking_finals_at_once_never_makes_more_than_two(any_db_app):
    app = any_db_app
    token = "f" * 43
    ada = make_participant(app, "Ada", token=token)
    ids = [make_submission(app, ada, status="done", public_score=0.5 + i / 100) for i in range(6)]
    barrier = threading.Barrier(len(ids))
    answers: list[int] = []

    def mark(submission_id: int) -> None:
        client = app.test_client()
        barrier.wait()
        headers = {"Authorization": f"Bearer {token}"}
        response = client.post(f"/api/submissions/{submission_id}/final", json={"final": True}, headers=headers)
        answers.append(response.status_code)

    threads = [threading.Thread(target=mark, args=(submission_id,)) for submission_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with new_session(app) as db:
        finals = db.query(Submission).filter(Submission.participant_id == ada, Submission.final.is_(True)).count()
    assert finals == 2
    assert sorted(answers) == [200, 200, 409, 409, 409, 409]
