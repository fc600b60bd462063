"""The takeaway bundle (issue 12, point 7): a participant downloads their own work -- code, scores, curves, the
exercises and starter kits -- and never anyone else's, nor a private score before the exercise's reveal."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from factories import login_client, make_participant, make_submission
from PIL import Image

from server.catalog import catalog
from server.db import new_session
from server.event import reveal

HISTORY = [
    {
        "epoch": epoch,
        "seconds": 1.5,
        "metrics": {"loss": 1 / epoch, "val_loss": 1.1 / epoch, "auc": 0.6, "val_auc": 0.7},
    }
    for epoch in (1, 2, 3)
]
SCORED = {"status": "done", "public_score": 0.6111, "private_score": 0.8765432, "history": HISTORY}


def bundle_of(client) -> zipfile.ZipFile:
    response = client.get("/takeaway")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(response.get_data()))


def relative(archive: zipfile.ZipFile) -> dict[str, str]:
    """Entry names without the top folder -> full names."""
    return {name.split("/", 1)[1]: name for name in archive.namelist()}


@pytest.fixture
def two(app):
    ada, bo = make_participant(app, "Ada Lovelace"), make_participant(app, "Bo")
    mine = make_submission(app, ada, code="def train(data):\n    return 'ada-code'\n", **SCORED)
    failed = make_submission(app, ada, "fine-tuning", status="failed", error_kind="runtime_error", code="1/0\n")
    theirs = make_submission(app, bo, code="def train(data):\n    return 'bo-secret-code'\n", **SCORED)
    return {"ada": ada, "bo": bo, "mine": mine, "failed": failed, "theirs": theirs}


def test_the_bundle_holds_my_code_and_never_another_participants(app, two):
    archive = bundle_of(login_client(app, two["ada"]))
    top = {name.split("/")[0] for name in archive.namelist()}
    assert top == {f"takeaway-ada-lovelace-{two['ada']}"}
    files = relative(archive)
    assert f"submissions/cnn-from-scratch/{two['mine']}-done.py" in files
    assert f"submissions/fine-tuning/{two['failed']}-failed.py" in files
    assert not any(str(two["theirs"]) in name.rsplit("/", 1)[-1].split("-")[0] for name in files)
    everything = b"".join(archive.read(name) for name in archive.namelist() if not name.endswith((".npy", ".png")))
    assert b"ada-code" in everything and b"bo-secret-code" not in everything
    rows = list(csv.DictReader(io.StringIO(archive.read(files["scores.csv"]).decode())))
    assert [int(row["id"]) for row in rows] == [two["mine"], two["failed"]]
    assert rows[1]["status"] == "failed" and rows[1]["error_kind"] == "runtime_error"
    assert rows[0]["public_score"] == "0.6111" and rows[0]["created_at"].endswith("Z")


def test_the_private_score_is_absent_before_the_reveal_and_present_after(app, two):
    client = login_client(app, two["ada"])
    before = bundle_of(client)
    texts = [before.read(name) for name in before.namelist() if name.endswith((".csv", ".json", ".md", ".py"))]
    assert not any(b"0.8765" in text or b"private_score" in text for text in texts)
    with new_session(app) as db:
        reveal(db, catalog(app)["cnn-from-scratch"])
    after = bundle_of(client)
    files = relative(after)
    records = json.loads(after.read(files["scores.json"]))
    assert records[0]["private_score"] == 0.8765432 and "private_score" not in records[1]  # fine-tuning: hidden
    rows = list(csv.DictReader(io.StringIO(after.read(files["scores.csv"]).decode())))
    assert rows[0]["private_score"] == "0.8765432" and rows[1]["private_score"] == ""


def test_the_curves_are_valid_pictures(app, two):
    archive = bundle_of(login_client(app, two["ada"]))
    files = relative(archive)
    picture = Image.open(io.BytesIO(archive.read(files[f"curves/cnn-from-scratch/{two['mine']}.png"])))
    picture.verify()
    assert picture.format == "PNG" and picture.size[0] > 500
    assert f"curves/fine-tuning/{two['failed']}.png" not in files  # no history, no picture
    record = json.loads(archive.read(files["scores.json"]))[0]
    assert record["curves"] == f"curves/cnn-from-scratch/{two['mine']}.png"


def test_the_readmes_starter_kits_and_home_page_are_there_without_test_labels(app, two):
    archive = bundle_of(login_client(app, two["ada"]))
    files = relative(archive)
    for slug, exercise in catalog(app).items():
        assert archive.read(files[f"exercises/{slug}/README.md"]).decode() == exercise.readme
    kits = sorted(name for name in files if name.endswith("starter-kit.zip"))
    assert kits == ["exercises/cnn-from-scratch-starter-kit.zip", "exercises/fine-tuning-starter-kit.zip"]  # tried
    with zipfile.ZipFile(io.BytesIO(archive.read(files[kits[0]]))) as kit:
        names = kit.namelist()
    for part in ("run_local.py", "harness.py", "starter.py", "data/train.npy", "data/val.csv"):
        assert f"cnn-from-scratch-starter-kit/{part}" in names
    assert not any("test" in name.rsplit("/", 1)[-1] for name in names if "/data/" in name)
    home = archive.read(files["CONTINUE_AT_HOME.md"]).decode()
    assert "pip install tensorflow" in home and "python run_local.py" in home and "Colab" in home
    assert "unzip cnn-from-scratch-starter-kit.zip" in home
    assert f"../../submissions/cnn-from-scratch/{two['mine']}-done.py" in home


def test_a_participant_without_submissions_gets_the_readmes_and_a_note(app):
    lone = make_participant(app, "Lone")
    archive = bundle_of(login_client(app, lone))
    files = relative(archive)
    assert "exercises/open-challenge/README.md" in files and not any(name.endswith(".zip") for name in files)
    assert "you submitted nothing" in archive.read(files["CONTINUE_AT_HOME.md"]).decode()


def test_the_bundle_says_so_where_the_data_set_is_missing(app, two, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path / "no-data")
    files = relative(bundle_of(login_client(app, two["ada"])))
    assert "exercises/cnn-from-scratch/README.md" in files and not any("starter-kit" in name for name in files)
    home = bundle_of(login_client(app, two["ada"])).read(f"takeaway-ada-lovelace-{two['ada']}/CONTINUE_AT_HOME.md")
    assert b"could not be included" in home


def test_anonymous_visitors_are_sent_to_the_login_and_the_instructor_gets_no_bundle(app, client):
    response = client.get("/takeaway")
    assert response.status_code == 302 and "/join" in response.headers["Location"]
    with client.session_transaction() as session:
        session["role"] = "instructor"
    assert client.get("/takeaway").status_code == 403


def test_the_exercises_page_links_to_the_bundle(app, two):
    assert 'href="/takeaway"' in login_client(app, two["ada"]).get("/").get_data(as_text=True)
