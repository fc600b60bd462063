"""The export page in a real browser: the instructor follows the link and downloads the zip."""

from __future__ import annotations

import zipfile

import pytest
from browser_kit import instructor_in_browser, join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def test_instructor_downloads_the_export_from_the_page(live_server, page, tmp_path):  # noqa: F811
    join_in_browser(page, live_server, "Zip Zora")
    page.wait_for_selector("text=Welcome, Zip Zora")  # the join has landed before the cookies go
    page.context.clear_cookies()
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/")
    page.click("#export-and-backup")
    page.wait_for_selector("#download-export")
    assert page.is_visible("#download-export") and "1 participants" in page.inner_text("main, body")
    assert "workshop backup" in page.inner_text("body")
    shot(page, "export-page")
    with page.expect_download() as download_info:
        page.click("#download-export")
    download = download_info.value
    assert download.suggested_filename.startswith("workshop-export-") and download.suggested_filename.endswith(".zip")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    names = zipfile.ZipFile(saved).namelist()
    assert {"participants.csv", "submissions.csv", "export.json"} <= set(names)
    assert "Zip Zora" in zipfile.ZipFile(saved).read("participants.csv").decode()
