"""What the browser tests share: a real `workshop serve` on loopback, Debian's Chromium, screenshots.

tests/conftest.py loads this module as a plugin, so the fixtures (``live_server``, ``live_env``, ``page``)
are there for every test; import the helpers (``shot``, ``workshop``, ``join_in_browser``...). Mark the
module ``slow``, ``sandbox`` and ``browser``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD

from server.live_instance import start_serve, stop_serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("WORKSHOP_SCREENSHOTS", "/tmp/workshop-screenshots"))


def workshop_env(instance: Path, data_dir: Path, **extra: str) -> dict:
    """A live instance's environment. Warm slots are off here: each served instance would import TensorFlow in a
    sandbox at once, which a page test does not need (tests/browser/test_browser.py and the grading tests run
    them); ``WORKSHOP_WARM_SLOTS="1"`` in ``extra`` turns them on."""
    return {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(instance),
        "WORKSHOP_DATA_DIR": str(data_dir),
        "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD,
        "WORKSHOP_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
        "WORKSHOP_WARM_SLOTS": "0",
        **extra,
    }


def workshop(*args: str, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    """Run a `workshop` command (e.g. ``workshop("event", "freeze", env=env)``) against the live server's instance."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, check=check, capture_output=True, text=True
    )


@pytest.fixture
def live_env(tmp_path, data_dir) -> dict:
    """The environment of the live server's instance: pass it to ``workshop(...)`` to act on the same event."""
    return workshop_env(tmp_path, data_dir)


@pytest.fixture
def live_server(tmp_path, live_env):
    """`workshop init` + `workshop serve` in a subprocess, on a free loopback port, with one worker slot."""
    workshop("init", env=live_env)
    server, url = start_serve(live_env, tmp_path / "serve.log")
    yield url
    stop_serve(server)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser.new_page(viewport={"width": 1200, "height": 900})
        browser.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def join_in_browser(page, url: str, name: str, password: str = "personal-pass-1") -> None:
    page.goto(url + "/join")
    page.fill("input[name=event_password]", EVENT_PASSWORD)
    page.fill("input[name=display_name]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=password_confirm]", password)
    page.click("button:has-text('Join')")
    # the join has landed (the click does not wait); the document is enough, its scripts and styles may follow
    page.wait_for_url(lambda address: "/join" not in address, wait_until="domcontentloaded")


def instructor_in_browser(page, url: str) -> None:
    page.goto(url + "/instructor/login")
    page.fill("input[name=password]", INSTRUCTOR_PASSWORD)
    page.click("button:has-text('Log in')")
    try:
        page.wait_for_url(lambda address: "/instructor/login" not in address, wait_until="domcontentloaded")
    except Exception as error:  # say what the browser shows instead of a bare timeout
        shot(page, "instructor-login-stuck")
        shown = page.inner_text("body")[:800]
        raise AssertionError(f"the instructor login did not land: {page.url}\n{shown}") from error
