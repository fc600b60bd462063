"""The participants page in a real browser: search, rename, disqualify with a reason, and the participant's notice."""

from __future__ import annotations

import pytest
from browser_kit import instructor_in_browser, join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def _row(browser_page, name: str):
    return browser_page.locator("#participants tr.participant", has_text=name)


def test_instructor_searches_renames_and_disqualifies(live_server, page):  # noqa: F811
    for name in ("Grace Hopper", "Alan Turing"):
        join_in_browser(page, live_server, name)
        page.context.clear_cookies()
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/")
    page.click("#participants-link")
    assert _row(page, "Grace Hopper").count() == 1 and _row(page, "Alan Turing").count() == 1
    page.fill("#search input[name=q]", "hop")
    page.click("#search button")
    assert _row(page, "Grace Hopper").count() == 1 and _row(page, "Alan Turing").count() == 0
    row = _row(page, "Grace Hopper")
    row.locator("summary").click()
    row.locator("input[name=new_name]").fill("Grace B. Hopper")
    row.locator("button.rename").click()
    assert "Renamed Grace Hopper to Grace B. Hopper" in page.inner_text(".flash")
    row = _row(page, "Grace B. Hopper")
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("shared a solution")
    row.locator("button.disqualify").click()
    assert "is disqualified" in page.inner_text(".flash")
    row = _row(page, "Grace B. Hopper")
    assert "disqualified" in row.inner_text() and "shared a solution" in row.inner_text()
    row.locator("summary").click()
    shot(page, "participants-page")
    page.goto(live_server + "/instructor/participants/")
    assert _row(page, "Alan Turing").count() == 1  # the search was left
    page.context.clear_cookies()
    page.goto(live_server + "/login")
    page.fill("input[name=display_name]", "Grace B. Hopper")
    page.fill("input[name=password]", "personal-pass-1")
    page.click("button:has-text('Log in')")
    page.wait_for_selector("#moderation-notice")
    assert "You are disqualified: shared a solution" in page.inner_text("#moderation-notice")
    shot(page, "participants-disqualified-notice")
