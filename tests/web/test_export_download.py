"""The instructor downloads the export as one zip (CSV and code); participants and strangers cannot."""

from __future__ import annotations

import csv
import io
import zipfile

from factories import instructor_login, login_client, make_participant, make_submission

from server.db import new_session
from server.models import Participant
from server.participants_admin import disqualify, hide


def test_instructor_downloads_a_zip_with_csv_and_code(app, client):
    ada = make_participant(app, "Ada")
    first = make_submission(app, ada, status="done", public_score=0.8, private_score=0.7, code="print('one')\n")
    second = make_submission(app, ada, "fine-tuning", code="print('two')\n")
    instructor_login(client)
    page = client.get("/instructor/export").get_data(as_text=True)
    assert 'href="/instructor/export.zip"' in page and "2 submissions" in page
    assert 'id="export-and-backup"' in client.get("/instructor/").get_data(as_text=True)
    response = client.get("/instructor/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"] and response.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    names = set(archive.namelist())
    assert {"participants.csv", "submissions.csv", f"code/{first}.py", f"code/{second}.py"} <= names
    assert "leaderboard-cnn-from-scratch.csv" in names
    assert all(not name.startswith("/") and ".." not in name.split("/") for name in names)
    assert archive.read(f"code/{second}.py").decode() == "print('two')\n"
    rows = list(csv.DictReader(io.StringIO(archive.read("submissions.csv").decode())))
    assert [row["id"] for row in rows] == [str(first), str(second)] and rows[0]["private_score"] == "0.7"
    people = list(csv.DictReader(io.StringIO(archive.read("participants.csv").decode())))
    assert [row["display_name"] for row in people] == ["Ada"]
    assert people[0]["hidden"] == "0" and people[0]["disqualified_reason"] == ""


def test_the_participants_csv_says_who_is_hidden_or_disqualified(app, client):
    ada, bob, cy = (make_participant(app, name) for name in ("Ada", "Bob", "Cy"))
    with new_session(app) as db:
        hide(db, db.get(Participant, bob))
        disqualify(db, db.get(Participant, cy), "copied a neighbour's code")
    instructor_login(client)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/instructor/export.zip").get_data()))
    rows = csv.DictReader(io.StringIO(archive.read("participants.csv").decode()))
    people = {row["display_name"]: row for row in rows}
    assert (people["Ada"]["hidden"], people["Ada"]["disqualified_reason"]) == ("0", "")
    assert (people["Bob"]["hidden"], people["Bob"]["disqualified_reason"]) == ("1", "")
    assert people["Cy"]["disqualified_reason"] == "copied a neighbour's code"


def test_participants_and_strangers_get_no_export(app, client):
    ada = make_participant(app, "Ada")
    make_submission(app, ada, status="done", public_score=0.8, private_score=0.7)
    participant = login_client(app, ada)
    for url in ("/instructor/export", "/instructor/export.zip"):
        assert participant.get(url).status_code == 403
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
