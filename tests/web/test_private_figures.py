"""A participant never sees private-partition figures, of their own submissions or anyone's (issue 9, point 3).

The walk covers every GET route of the app (read from the URL map, so a new page is walked without editing this
test) as a logged-in participant, through the notebook API with a bearer token, and anonymously; downloads
(the starter kit zip) are opened and their text files read.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from factories import login_client, make_participant

from server.catalog import catalog
from server.db import new_session
from server.models import Submission, utcnow

TOKEN = "notebook-token-" + "a" * 30
# distinctive private figures: their printed forms appear nowhere else in the app's pages
PRIVATE = {"roc_auc": 0.8765432, "accuracy": 0.7654321, "balanced_accuracy": 0.6543219, "count": 20, "malignant": 7}
OTHERS_PRIVATE = {**PRIVATE, "roc_auc": 0.9123456}
FIGURES = r"0\.8765|0\.877|0\.7654|0\.765|0\.6543|0\.654|0\.9123|0\.912"
FORBIDDEN = re.compile(FIGURES + r"|private_score|\"private\"")
# the API's description names the fields a revealed board carries; it must still carry no figure
DESCRIBES_FIELDS = {"/api/openapi.json": re.compile(FIGURES)}
PUBLIC = {"roc_auc": 0.6111, "accuracy": 0.5222, "balanced_accuracy": 0.5333, "count": 20, "malignant": 6}


def scored_submission(app, participant_id: int, private: dict) -> int:
    with new_session(app) as db:
        submission = Submission(
            participant_id=participant_id,
            exercise_slug="cnn-from-scratch",
            dataset="synthetic",
            code="def train(data):\n    return None\n",
            status="done",
            public_score=PUBLIC["roc_auc"],
            private_score=private["roc_auc"],
            metrics={"public": PUBLIC, "private": private},
            finished_at=utcnow(),
        )
        db.add(submission)
        db.commit()
        return submission.id


@pytest.fixture
def event(app):
    ada = make_participant(app, "Ada", token=TOKEN)
    bo = make_participant(app, "Bo")
    return {
        "ada": ada,
        "mine": scored_submission(app, ada, PRIVATE),
        "theirs": scored_submission(app, bo, OTHERS_PRIVATE),
    }


def urls_of_every_get_route(app, event) -> list[str]:
    values = {
        "submission_id": [event["mine"], event["theirs"]],
        "slug": list(catalog(app)),
        "file": ["manifest.json", "test_ids.csv"],  # the worker API's public files: a worker token only
    }
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        unknown = set(rule.arguments) - set(values) - {"name", "split", "label", "index"}
        assert not unknown, f"teach this test the URL arguments {unknown} of {rule.rule}"
        choices = [{}]
        for argument in rule.arguments:
            options = values.get(argument, ["synthetic"] if argument == "name" else [0])
            choices = [{**choice, argument: option} for choice in choices for option in options]
        with app.test_request_context():
            from flask import url_for

            urls += [url_for(rule.endpoint, **choice) for choice in choices]
    return sorted(set(urls))


def texts_of(response) -> list[str]:
    """The response as text; a zip download as the text of each file in it."""
    if response.mimetype == "application/zip":
        with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
            return [
                archive.read(name).decode("utf-8", errors="replace")
                for name in archive.namelist()
                if name.endswith((".py", ".md", ".json", ".csv", ".txt"))
            ]
    if response.mimetype.startswith("image/"):
        return []
    return [response.get_data(as_text=True)]


def test_no_participant_facing_endpoint_shows_private_figures(app, event):
    participant = login_client(app, event["ada"])
    clients = {
        "participant": (participant, {}),
        "notebook": (app.test_client(), {"Authorization": f"Bearer {TOKEN}"}),
        "anonymous": (app.test_client(), {}),
    }
    urls = urls_of_every_get_route(app, event)
    assert f"/submissions/{event['mine']}.json" in urls and "/api/leaderboard/cnn-from-scratch" in urls
    seen_ok = 0
    for who, (client, headers) in clients.items():
        for url in urls:
            response = client.get(url, headers=headers)
            assert response.status_code < 500, (who, url, response.status_code)
            seen_ok += response.status_code == 200
            for text in texts_of(response):
                leak = DESCRIBES_FIELDS.get(url, FORBIDDEN).search(text)
                assert leak is None, f"{who} sees {leak.group()!r} on {url}"
    assert seen_ok > 20  # the walk reached real pages, not only refusals
    own = participant.get(f"/submissions/{event['mine']}.json").get_json()
    assert own["metrics"] == {"public": PUBLIC} and own["public_score"] == PUBLIC["roc_auc"]


def test_the_instructor_sees_the_private_figures(app, event):
    instructor = app.test_client()
    with instructor.session_transaction() as session:
        session["role"] = "instructor"
    state = instructor.get(f"/submissions/{event['mine']}.json").get_json()
    assert state["private_score"] == PRIVATE["roc_auc"] and state["metrics"]["private"] == PRIVATE
    assert "0.8765" in instructor.get(f"/submissions/{event['mine']}").get_data(as_text=True)
    board = instructor.get("/leaderboard/cnn-from-scratch.json").get_json()
    assert {row["private_score"] for row in board["rows"]} == {PRIVATE["roc_auc"], OTHERS_PRIVATE["roc_auc"]}


@pytest.mark.parametrize("url", ["/submissions/99999999999999999999999", "/submissions/99999999999999999999999.json"])
def test_an_id_too_large_for_the_database_is_simply_not_found(app, event, url):
    assert login_client(app, event["ada"]).get(url).status_code == 404
