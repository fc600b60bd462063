"""What the browser tests share: a real `workshop serve` on loopback, Debian's Chromium, screenshots.

tests/conftest.py loads this module as a plugin, so the fixtures (``live_server``, ``live_env``, ``page``)
are there for every test; import the helpers (``shot``, ``workshop``, ``join_in_browser``...). Mark the
module ``slow``, ``sandbox`` and ``browser``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("WORKSHOP_SCREENSHOTS", "/tmp/workshop-screenshots"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def workshop_env(instance: Path, data_dir: Path, **extra: str) -> dict:
    return {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(instance),
        "WORKSHOP_DATA_DIR": str(data_dir),
        "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD,
        "WORKSHOP_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
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
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--slots", "1"],
        env=live_env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/login", timeout=1)  # noqa: S310 - loopback only
            break
        except OSError:
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=20)
    log.close()


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
    page.wait_for_url(lambda address: "/join" not in address)  # the join has landed (the click does not wait)


def instructor_in_browser(page, url: str) -> None:
    page.goto(url + "/instructor/login")
    page.fill("input[name=password]", INSTRUCTOR_PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(lambda address: "/instructor/login" not in address)
