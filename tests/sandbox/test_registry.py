"""The registry of backends (``WORKSHOP_SANDBOX`` names) and the options it passes on."""

from __future__ import annotations

import pytest

from grader.sandbox import SANDBOXES, SandboxUnavailable, get_sandbox

pytestmark = [pytest.mark.sandbox]


def test_registry_names_every_backend_and_passes_options():
    assert set(SANDBOXES) == {"bwrap", "docker", "none"}
    assert get_sandbox("docker", image="registry.example/workshop:7").image == "registry.example/workshop:7"
    with pytest.raises(SandboxUnavailable, match="unknown sandbox"):
        get_sandbox("chroot")
