"""The marker gate: a test marked ``sandbox`` or ``browser`` fails, naming what to install, on a host that lacks it."""

from __future__ import annotations

import pytest
from host_needs import BROWSER_NEEDS, SANDBOX_NEEDS, missing_for, slow_unmarked, unguard


def _which(*present: str):
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("markers", "is_root", "present", "expected"),
    [
        (["sandbox"], True, ["bwrap"], []),
        (["sandbox"], False, ["bwrap"], [SANDBOX_NEEDS]),
        (["sandbox"], True, [], [SANDBOX_NEEDS]),
        (["browser"], False, ["chromium"], []),
        (["browser"], True, ["bwrap"], [BROWSER_NEEDS]),
        (["slow", "sandbox", "browser"], False, [], [SANDBOX_NEEDS, BROWSER_NEEDS]),
        (["slow", "hostile"], False, [], []),
    ],
)
def test_missing_for_names_what_the_host_lacks(markers, is_root, present, expected):
    assert missing_for(markers, is_root=is_root, which=_which(*present)) == expected


def test_a_marked_test_fails_without_bubblewrap_and_never_skips(pytester, monkeypatch):
    pytester.makeini("[pytest]\nmarkers =\n    sandbox: x\n    browser: x\n")
    pytester.makeconftest("from host_needs import fail_if_host_lacks as pytest_runtest_setup\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sandbox
        def test_needs_the_sandbox():
            pass

        @pytest.mark.browser
        def test_needs_chromium():
            pass

        def test_needs_nothing():
            pass
        """
    )
    monkeypatch.setenv("PATH", str(pytester.path))  # neither bwrap nor chromium is found
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_needs_the_sandbox*",
            "needs root and bubblewrap (apt-get install bubblewrap; run as root)",
            "*ERROR at setup of test_needs_chromium*",
            "needs Chromium (apt-get install chromium)",
        ]
    )


def test_a_test_that_uses_the_sandbox_or_chromium_without_its_marker_fails_naming_it(pytester, monkeypatch):
    unguard(monkeypatch)  # this test's own guard (it is unmarked) would otherwise stand in for the inner ones
    pytester.makeini("[pytest]\nmarkers =\n    sandbox: x\n    browser: x\n")
    pytester.makeconftest(
        """
        import pytest
        from host_needs import guard_unmarked

        @pytest.fixture(autouse=True)
        def _guard(request, monkeypatch):
            guard_unmarked(request.node, monkeypatch)
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from grader.sandbox.base import IsolatedSandbox
        from grader.sandbox.bwrap import BwrapSandbox

        ORIGINAL = IsolatedSandbox.__dict__["run_program"]

        def test_forgot_the_sandbox_marker():
            BwrapSandbox().run(job=None)

        def test_forgot_the_browser_marker():
            from playwright.sync_api import sync_playwright
            sync_playwright()

        @pytest.mark.sandbox
        def test_marked_gets_the_real_sandbox():
            assert IsolatedSandbox.__dict__["run_program"] is ORIGINAL

        @pytest.mark.browser
        def test_marked_gets_the_real_playwright():
            import playwright.sync_api
            assert playwright.sync_api.sync_playwright.__module__.startswith("playwright")
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*UnmarkedNeed: this test runs the real sandbox: mark it @pytest.mark.sandbox*",
            "*UnmarkedNeed: this test drives Chromium: mark it @pytest.mark.browser*",
        ]
    )


def test_unmarked_tests_that_took_long_are_listed():
    class Report:
        def __init__(self, nodeid, duration, keywords, when="call"):
            self.nodeid, self.duration, self.keywords, self.when = nodeid, duration, keywords, when

    reports = [
        Report("t.py::quick", 0.2, {}),
        Report("t.py::long_unmarked", 12.0, {}),
        Report("t.py::long_marked", 40.0, {"slow": 1}),
        Report("t.py::long_setup", 30.0, {}, when="setup"),
    ]
    assert slow_unmarked(reports) == ["t.py::long_unmarked took 12 s: mark it @pytest.mark.slow"]
