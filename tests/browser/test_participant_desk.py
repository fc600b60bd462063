"""The support desk in a real browser: a forgotten password (the instructor's one-time code, the participant's
form) and deleting a participant after the confirmation."""

from __future__ import annotations

import pytest
from browser_kit import instructor_in_browser, join_in_browser, live_server, page, shot  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]


def _row(browser_page, name: str):
    return browser_page.locator("#participants tr.participant", has_text=name)


def _log_in(browser_page, url: str, name: str, password: str) -> None:
    browser_page.goto(url + "/login")
    browser_page.fill("input[name=display_name]", name)
    browser_page.fill("input[name=password]", password)
    browser_page.click("button:has-text('Log in')")
    browser_page.wait_for_load_state()


def test_a_reset_code_from_the_instructor_lets_the_participant_set_a_new_password(live_server, page):  # noqa: F811
    join_in_browser(page, live_server, "Ada Lovelace")
    page.context.clear_cookies()
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/participants/")
    row = _row(page, "Ada Lovelace")
    row.locator("summary").click()
    row.locator("button.reset-password").click()
    page.wait_for_selector("#reset-code-card")
    code = page.inner_text("#reset-code").strip()
    assert len(code) >= 12 and "Ada Lovelace" in page.inner_text("#reset-code-card")
    shot(page, "participants-reset-code")
    page.goto(live_server + "/instructor/participants/")  # shown on that one answer only
    assert page.locator("#reset-code").count() == 0
    page.context.clear_cookies()
    page.goto(live_server + "/login")
    page.click("#reset-password-link")
    page.wait_for_selector("#reset-password-form")
    page.fill("input[name=display_name]", "Ada Lovelace")
    page.fill("input[name=code]", "WRON-GCOD-E123")
    page.fill("input[name=password]", "analytical-engine")
    page.fill("input[name=password_confirm]", "analytical-engine")
    page.click("#reset-password-form button[type=submit]")
    page.wait_for_selector(".errors, .error, [role=alert]")
    assert "code is wrong" in page.content()
    page.fill("input[name=code]", code)
    page.fill("input[name=password]", "analytical-engine")
    page.fill("input[name=password_confirm]", "analytical-engine")
    shot(page, "reset-password-form")
    page.click("#reset-password-form button[type=submit]")
    page.wait_for_url(lambda address: "/reset-password" not in address)
    assert "Your new password is set" in page.inner_text(".flash")
    _log_in(page, live_server, "Ada Lovelace", "personal-pass-1")  # the old password no longer works
    assert "/login" in page.url
    _log_in(page, live_server, "Ada Lovelace", "analytical-engine")
    assert "/login" not in page.url and "Ada Lovelace" in page.content()


def test_deleting_a_participant_asks_first_and_then_they_are_gone(live_server, page):  # noqa: F811
    for name in ("Grace Hopper", "Alan Turing"):
        join_in_browser(page, live_server, name)
        page.context.clear_cookies()
    instructor_in_browser(page, live_server)
    page.goto(live_server + "/instructor/participants/")
    row = _row(page, "Alan Turing")
    row.locator("summary").click()
    row.locator("a.delete").click()
    page.wait_for_selector("#confirm-delete")
    assert "Delete Alan Turing?" in page.inner_text("#confirm-delete")
    assert _row(page, "Alan Turing").count() == 1  # nothing happened yet
    shot(page, "participants-confirm-delete")
    page.click("#confirm-delete-button")
    page.wait_for_selector("#confirm-delete", state="detached")
    assert "Deleted Alan Turing" in page.inner_text(".flash")
    assert _row(page, "Alan Turing").count() == 0 and _row(page, "Grace Hopper").count() == 1
    page.context.clear_cookies()
    _log_in(page, live_server, "Alan Turing", "personal-pass-1")
    assert "/login" in page.url
