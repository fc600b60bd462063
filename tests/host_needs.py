"""What a marked test needs from the host, and the message naming what is missing (tests fail on it, never skip)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable

SANDBOX_NEEDS = "needs root and bubblewrap (apt-get install bubblewrap; run as root)"
BROWSER_NEEDS = "needs Chromium (apt-get install chromium)"


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
    return missing


def fail_if_host_lacks(item) -> None:
    """Fail ``item`` at once, naming what is missing, when the host cannot run what its markers say it needs."""
    import pytest

    missing = missing_for(marker.name for marker in item.iter_markers())
    if missing:
        pytest.fail("; ".join(missing), pytrace=False)
