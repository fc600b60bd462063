"""Data sets for the instructor: import and activate from the command line, the data page with thumbnails."""

from __future__ import annotations

import shutil

from factories import instructor_login, join, post_form
from isic_exports import isic_cli_images, make_isic_cli

from grader.data import list_datasets
from server.db import new_session
from server.models import EventSettings


def active(app) -> str:
    with new_session(app) as db:
        return db.get(EventSettings, 1).active_dataset


def writable_data_dir(app, data_dir, tmp_path):
    """A copy of the session's data folder that this test may add to."""
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    app.config["DATA_DIR"] = str(copy)
    return copy


def test_import_isic_then_activate_from_the_command_line(app, runner, data_dir, tmp_path):
    copy = writable_data_dir(app, data_dir, tmp_path)
    source = make_isic_cli(tmp_path / "export", isic_cli_images())
    result = runner.invoke(args=["data", "import-isic", str(source), "--name", "ws", "--size", "32", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "Imported isic-cli data set 'ws'" in result.output
    assert list_datasets(copy) == ["synthetic", "ws"]
    assert active(app) == "synthetic"
    activated = runner.invoke(args=["data", "activate", "ws"])
    assert activated.exit_code == 0, activated.output
    assert active(app) == "ws"


def test_import_isic_reports_a_broken_export(app, runner, data_dir, tmp_path):
    writable_data_dir(app, data_dir, tmp_path)
    source = tmp_path / "empty-export"
    source.mkdir()
    result = runner.invoke(args=["data", "import-isic", str(source), "--name", "ws"])
    assert result.exit_code != 0 and "metadata" in result.output.lower()
    bad = runner.invoke(args=["data", "import-isic", str(source), "--fractions", "0.5,0.5"])
    assert bad.exit_code != 0 and "three numbers" in bad.output


def test_activate_refuses_a_missing_data_set(app, runner):
    result = runner.invoke(args=["data", "activate", "nope"])
    assert result.exit_code != 0 and "not found" in result.output
    assert active(app) == "synthetic"


def test_instructor_data_page_shows_balance_and_thumbnails(app):
    client = app.test_client()
    instructor_login(client)
    page = client.get("/instructor/data").get_data(as_text=True)
    assert "synthetic" in page and "(active)" in page
    assert "test public" in page and "malignant" in page
    assert "/instructor/data/synthetic/train/" in page
    thumb = client.get("/instructor/data/synthetic/train/0.png")
    assert thumb.status_code == 200 and thumb.data.startswith(b"\x89PNG")
    assert client.get("/instructor/data/synthetic/test/0.png").status_code == 404
    assert client.get("/instructor/data/synthetic/train/99999.png").status_code == 404
    assert client.get("/instructor/data/..%2Fetc/train/0.png").status_code == 404


def test_instructor_switches_the_active_data_set_in_the_browser(app, data_dir, tmp_path):
    copy = writable_data_dir(app, data_dir, tmp_path)
    shutil.copytree(copy / "synthetic", copy / "second")
    client = app.test_client()
    instructor_login(client)
    response = post_form(client, "/instructor/data/second/activate", {}, form_url="/instructor/data")
    assert response.status_code == 302 and active(app) == "second"
    assert post_form(client, "/instructor/data/nope/activate", {}, form_url="/instructor/data").status_code == 400


def test_participants_cannot_see_data_pages(app):
    client = app.test_client()
    join(client)
    assert client.get("/instructor/data").status_code == 403
    assert client.get("/instructor/data/synthetic/train/0.png").status_code == 403
