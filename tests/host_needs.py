"""What a marked test needs from the host, and the message naming what is missing (tests fail on it, never skip)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable

SANDBOX_NEEDS = "needs root and bubblewrap (apt-get install bubblewrap; run as root)"
BROWSER_NEEDS = "needs Chromium (apt-get install chromium)"
DOCKER_NEEDS = "needs root and docker.io, debootstrap, docker-compose (apt-get install those three)"
DOCKER_TOOLS = ("dockerd", "debootstrap", "docker-compose")


def missing_for(
    markers: Iterable[str],
    *,
    is_root: bool | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """The messages for what the host lacks that tests with these ``markers`` need; empty when nothing is missing."""
    names = set(markers)
    root = os.geteuid() == 0 if is_root is None else is_root
    missing = []
    if "sandbox" in names and not (root and which("bwrap")):
        missing.append(SANDBOX_NEEDS)
    if "browser" in names and not which("chromium"):
        missing.append(BROWSER_NEEDS)
    if "docker" in names and not (root and all(which(tool) for tool in DOCKER_TOOLS)):
        missing.append(DOCKER_NEEDS)
    return missing


def fail_if_host_lacks(item) -> None:
    """Fail ``item`` at once, naming what is missing, when the host cannot run what its markers say it needs."""
    import pytest

    missing = missing_for(marker.name for marker in item.iter_markers())
    if missing:
        pytest.fail("; ".join(missing), pytrace=False)


UNMARKED_SANDBOX = "this test runs the real sandbox: mark it @pytest.mark.sandbox (it needs root and bubblewrap)"
UNMARKED_BROWSER = "this test drives Chromium: mark it @pytest.mark.browser (it needs Chromium)"
SLOW_SECONDS = 5.0  # an unmarked test that takes longer is listed at the end of the run: mark it slow


class UnmarkedNeed(AssertionError):
    """A test used the sandbox or the browser without the marker that says so."""


def _refuse(message: str):
    def refuse(*args, **kwargs):
        raise UnmarkedNeed(message)

    return refuse


def _guarded() -> list[tuple[object, str]]:
    """What the guard replaces: the sandbox's run, and Playwright's entry point where it is installed."""
    from grader.sandbox.base import IsolatedSandbox

    targets: list[tuple[object, str]] = [(IsolatedSandbox, "run_program")]
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        return targets
    return [*targets, (playwright_api, "sync_playwright")]


_ORIGINALS: dict[tuple[int, str], object] = {}


def guard_unmarked(item, monkeypatch) -> None:
    """Make the sandbox and the browser refuse a test that is not marked as needing them.

    So the markers stay true: ``-m "not sandbox"`` really leaves out every test that needs root and
    bubblewrap, and a new test that forgets its marker fails with a message saying which one to add.
    """
    names = {marker.name for marker in item.iter_markers()}
    for target, attribute in _guarded():
        _ORIGINALS.setdefault((id(target), attribute), getattr(target, attribute))
        if attribute == "run_program" and "sandbox" not in names:
            monkeypatch.setattr(target, attribute, _refuse(UNMARKED_SANDBOX))
        if attribute == "sync_playwright" and "browser" not in names:
            monkeypatch.setattr(target, attribute, _refuse(UNMARKED_BROWSER))


def unguard(monkeypatch) -> None:
    """Put the real sandbox and Playwright back for the rest of this test (the guard's own tests)."""
    for target, attribute in _guarded():
        monkeypatch.setattr(target, attribute, _ORIGINALS[(id(target), attribute)])


def slow_unmarked(reports: Iterable, threshold: float = SLOW_SECONDS) -> list[str]:
    """Lines naming the tests not marked ``slow`` whose call took longer than ``threshold`` seconds."""
    return [
        f"{report.nodeid} took {report.duration:.0f} s: mark it @pytest.mark.slow"
        for report in reports
        if report.when == "call" and report.duration > threshold and "slow" not in report.keywords
    ]
