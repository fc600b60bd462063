"""The `docker` marker's gate: a test marked `docker` fails at once, naming what to install, on a host without."""

from __future__ import annotations

import pytest
from host_needs import DOCKER_NEEDS, missing_for


def _which(*present: str):
    return lambda name: f"/usr/bin/{name}" if name in present else None


@pytest.mark.parametrize(
    ("is_root", "present", "expected"),
    [
        (True, ["dockerd", "debootstrap", "docker-compose"], []),
        (False, ["dockerd", "debootstrap", "docker-compose"], [DOCKER_NEEDS]),
        (True, ["dockerd", "docker-compose"], [DOCKER_NEEDS]),
        (True, ["dockerd", "debootstrap"], [DOCKER_NEEDS]),
    ],
)
def test_the_docker_marker_needs_root_the_engine_debootstrap_and_compose(is_root, present, expected):
    assert missing_for(["docker"], is_root=is_root, which=_which(*present)) == expected
    assert missing_for(["slow"], is_root=is_root, which=_which(*present)) == []
