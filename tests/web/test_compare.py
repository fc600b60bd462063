"""Contract refusals (page and API: 400, nothing stored or charged), seeds (form, API, run again), the run record,
and the compare page (own submissions only, public figures only for participants, an escaped diff)."""

from __future__ import annotations

import re

import pytest
from factories import instructor_login, login_client, make_participant, make_submission, post_form
from sqlalchemy import select

from server.db import new_session
from server.models import ExerciseControl, Participant, Submission

SLUG = "cnn-from-scratch"
TOKEN = "ws_" + "c" * 43
GOOD = "def train(data):\n    return None\n"
TWO_ARGS = "import keras\n\ndef train(data, epochs):\n    return None\n"
FIGURE = {"roc": [[0, 0], [0.2, 0.6], [1, 1]], "operating_point": [0.2, 0.6], "confusion": {"tp": 3, "fn": 2}}
METRICS = {
    "public": {"roc_auc": 0.71, "accuracy": 0.65, "count": 20},
    "private": {"roc_auc": 0.55, "accuracy": 0.6, "count": 20},
    "figures": {"public": FIGURE, "private": {**FIGURE, "roc": [[0, 0], [0.5, 0.5], [1, 1]]}},
}
SCRIPT_CODE = "def train(data):\n    epochs = 5  # <script>alert(1)</script>\n    return None\n"
HISTORY = [{"epoch": 1, "seconds": 1.0, "metrics": {"loss": 0.7, "val_auc": 0.6}}]


def rows_of(app, participant_id: int) -> list[Submission]:
    with new_session(app) as db:
        return list(db.scalars(select(Submission).where(Submission.participant_id == participant_id)))


def limit_quota_to_one(app) -> None:
    with new_session(app) as db:
        db.add(ExerciseControl(slug=SLUG, quota_set=True, quota_count=1, quota_seconds=3600))
        db.commit()


@pytest.fixture
def ada(app) -> int:
    return make_participant(app, "Ada", token=TOKEN)


def test_the_page_refuses_a_broken_contract_before_the_quota(app, ada):
    limit_quota_to_one(app)
    make_submission(app, ada, SLUG, status="done", public_score=0.5)  # the one submission of the quota is used
    client = login_client(app, ada)
    response = post_form(client, f"/exercises/{SLUG}/submit", {"code": TWO_ARGS}, form_url=f"/exercises/{SLUG}")
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page[:500]
    assert "train takes 2 arguments (line 3); the server calls train(data) with one" in page
    assert len(rows_of(app, ada)) == 1
    # the same code with the contract kept meets the quota: the check came first, and charged nothing
    response = post_form(client, f"/exercises/{SLUG}/submit", {"code": GOOD}, form_url=f"/exercises/{SLUG}")
    assert response.status_code == 429


def test_the_api_refuses_a_broken_contract_with_its_line_and_stores_nothing(app, ada):
    api = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": "x = 1\n"}, headers=headers)
    error = response.get_json()["error"]
    assert response.status_code == 400 and error["code"] == "contract"
    assert error["message"].startswith("Your code has no function train(data) at the top level")
    response = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": TWO_ARGS}, headers=headers)
    assert response.status_code == 400 and response.get_json()["error"]["line"] == 3
    assert rows_of(app, ada) == []
    with new_session(app) as db:
        assert db.get(Participant, ada).last_submitted_at is None


def test_the_api_takes_a_seed_returns_it_and_stores_warnings_as_notes(app, ada):
    api = app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    code = "import requests\n\n" + GOOD
    response = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": code, "seed": 1234}, headers=headers)
    body = response.get_json()
    assert response.status_code == 201 and body["seed"] == 1234
    assert body["notes"] == [
        "Warning: line 1 imports requests: the sandbox has no network, so downloads and requests fail."
    ]
    bad = api.post(f"/api/exercises/{SLUG}/submissions", json={"code": GOOD, "seed": "soon"}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_seed"
    assert [row.seed for row in rows_of(app, ada)] == [1234]


def test_the_form_takes_a_seed_and_draws_one_when_empty(app, ada):
    client = login_client(app, ada)
    assert 'name="seed"' in client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    form = {"code": GOOD, "seed": "99"}
    response = post_form(client, f"/exercises/{SLUG}/submit", form, form_url=f"/exercises/{SLUG}")
    assert response.status_code == 302
    with new_session(app) as db:
        for row in db.scalars(select(Submission)):
            row.status = "done"
        db.commit()
    post_form(client, f"/exercises/{SLUG}/submit", {"code": GOOD, "seed": ""}, form_url=f"/exercises/{SLUG}")
    seeds = [row.seed for row in rows_of(app, ada)]
    assert seeds[0] == 99 and seeds[1] is not None


def test_the_run_record_shows_what_the_job_ran_on(app, ada):
    info = {
        "python": "3.11.7",
        "tensorflow": "2.21.0",
        "keras": "3.15.1",
        "device": "GPU: NVIDIA H200",
        "dataset": "synthetic",
        "dataset_checksum": "ab" * 32,
        "time_limit": "60.0",
        "seed": "5",
    }
    done = make_submission(app, ada, SLUG, status="done", public_score=0.7, run_info=info, seed=5, notes=["Warning: x"])
    page = login_client(app, ada).get(f"/submissions/{done}").get_data(as_text=True)
    record = page[page.index('id="run-record"') :]
    for shown in ("3.11.7", "2.21.0", "3.15.1", "GPU: NVIDIA H200", "synthetic", "abababababababab", "60 s", ">5<"):
        assert shown in record, shown
    assert f'title="{"ab" * 32}"' in record and "Run again with the same seed" in record
    waiting = make_submission(app, ada, SLUG, seed=8)
    record = login_client(app, ada).get(f"/submissions/{waiting}").get_data(as_text=True)
    assert "after the run" in record and ">8<" in record and "Run again" not in record


def test_run_again_queues_the_same_code_with_the_same_seed(app, ada):
    code = "# version 3\n" + GOOD
    first = make_submission(app, ada, SLUG, status="done", code=code, seed=4242)
    client = login_client(app, ada)
    response = post_form(client, f"/submissions/{first}/again", {}, form_url=f"/submissions/{first}")
    assert response.status_code == 302
    again = max(rows_of(app, ada), key=lambda row: row.id)
    assert again.id != first and again.code == code and again.seed == 4242 and again.status == "queued"
    assert response.headers["Location"].endswith(f"/submissions/{again.id}")
    # one open submission at a time: refused in words, nothing more queued
    response = post_form(client, f"/submissions/{first}/again", {}, form_url=f"/submissions/{first}")
    assert "Not queued: You already have a submission waiting" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert len(rows_of(app, ada)) == 2


def test_nobody_runs_again_anothers_submission(app, ada):
    eve = make_participant(app, "Eve")
    theirs = make_submission(app, ada, SLUG, status="done")
    client = login_client(app, eve)
    mine = make_submission(app, eve, SLUG, status="done")
    response = post_form(client, f"/submissions/{theirs}/again", {}, form_url=f"/submissions/{mine}")
    assert response.status_code == 404 and len(rows_of(app, ada)) == 1 and len(rows_of(app, eve)) == 1


def two_done(app, participant: int) -> tuple[int, int]:
    first = make_submission(
        app,
        participant,
        SLUG,
        status="done",
        public_score=0.71,
        private_score=0.55,
        metrics=METRICS,
        history=HISTORY,
        seed=1,
        code="def train(data):\n    epochs = 3\n    return None\n",
    )
    better = {"public": {"roc_auc": 0.8, "accuracy": 0.7, "count": 20}, "private": {"roc_auc": 0.9, "count": 20}}
    second = make_submission(
        app,
        participant,
        SLUG,
        status="done",
        public_score=0.8,
        private_score=0.9,
        metrics=better,
        history=HISTORY * 2,
        seed=2,
        code=SCRIPT_CODE,
    )
    return first, second


def test_a_participant_compares_two_of_their_own(app, ada):
    first, second = two_done(app, ada)
    client = login_client(app, ada)
    record = client.get(f"/submissions/{second}").get_data(as_text=True)
    assert re.search(rf'<option value="{first}">#{first} · done · 0.7100 · seed 1</option>', record)
    response = client.get(f"/submissions/compare?a={first}&b={second}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<td>0.7100</td>" in page and "<td>0.8000</td>" in page and "+0.0900" in page
    assert "0.9000" not in page and "0.5500" not in page and "(private)" not in page  # public figures only
    assert '<span class="diff-del">-    epochs = 3</span>' in page
    assert '<span class="diff-add">+    epochs = 5  # &lt;script&gt;alert(1)&lt;/script&gt;</span>' in page
    assert "<script>alert" not in page
    for side in ("a", "b"):  # training curves and the public ROC curve, each with a text alternative
        assert f'id="curves-{side}-0" role="img"' in page and f'<title id="curves-{side}-0-title">' in page
    assert 'id="roc-a" role="img"' in page and "ROC curve of the public test images" in page
    assert 'id="roc-b"' not in page  # the second has no figures: no picture, no error
    assert "private test images" not in page


def test_the_instructor_sees_the_private_figures_too(app, ada):
    first, second = two_done(app, ada)
    client = app.test_client()
    instructor_login(client)
    page = client.get(f"/submissions/compare?a={first}&b={second}").get_data(as_text=True)
    assert "ROC AUC (private)" in page and "0.9000" in page


BAD_QUERIES = [
    "a={theirs}&b={mine}",
    "a={mine}&b={theirs}",
    "a={mine}",
    "a={mine}&b=99999",
    "a=x&b={mine}",
    "a={mine}&b=-1",
    "a={mine}&b=99999999999999999999",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_compare_answers_404_unless_both_are_the_viewers(app, ada, query):
    eve = make_participant(app, "Eve")
    mine = make_submission(app, eve, SLUG, status="done")
    theirs = make_submission(app, ada, SLUG, status="done")
    response = login_client(app, eve).get("/submissions/compare?" + query.format(mine=mine, theirs=theirs))
    assert response.status_code == 404


def test_a_visitor_cannot_compare(app, ada):
    first, second = two_done(app, ada)
    response = app.test_client().get(f"/submissions/compare?a={first}&b={second}")
    assert response.status_code in (302, 404)


def test_a_contract_failure_is_explained_as_such_not_as_a_crash(app, ada):
    failed = make_submission(
        app,
        ada,
        SLUG,
        status="failed",
        error_kind="contract",
        error_message="train(data) returned None; end it with `return model`, the keras.Model you trained",
    )
    page = login_client(app, ada).get(f"/submissions/{failed}").get_data(as_text=True)
    assert "train(data) must be defined at the top level of your file and return the keras.Model" in page
    assert "Your code raised an error." not in page and "returned None" in page
