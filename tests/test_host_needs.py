"""The marker gate: a test marked ``sandbox`` or ``browser`` fails, naming what to install, on a host that lacks it."""

from __future__ import annotations

import pytest
from host_needs import BROWSER_NEEDS, SANDBOX_NEEDS, missing_for


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
