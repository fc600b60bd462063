"""The Docker image's size and build time (issue 13, point 6), in a private engine that is removed afterwards.

Builds the base from Debian's packages (``make docker-base``: debootstrap, then ``docker import``) and the image
(``make docker-image`` with pip's CA bundle), both cold, then the image again (cached: no change), and prints
the seconds and the sizes, with the image's largest layers. Needs root, docker.io and debootstrap.

    .venv/bin/python bench/docker_image.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "docker"))

from docker_kit import IMAGE, build_image, pip_ca_bundle, private_engine  # noqa: E402


def main() -> None:
    started = time.monotonic()
    with private_engine() as engine:
        built = build_image(engine)
        cached = engine.make("docker-image", f"DOCKER_IMAGE={IMAGE}", f"DOCKER_CA={pip_ca_bundle()}")
        history = engine.docker("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE).stdout
    print(f"{'step':<44} {'seconds':>8} {'size':>10}")
    print(f"{'base (debootstrap + import)':<44} {built.base_seconds:>8.0f} {built.base_bytes / 1e6:>8.0f} MB")
    print(f"{'image, cold (base cached)':<44} {built.image_seconds:>8.0f} {built.image_bytes / 1e6:>8.0f} MB")
    print(f"{'image again, nothing changed':<44} {cached:>8.0f}")
    print(f"{'everything, with engine start and removal':<44} {time.monotonic() - started:>8.0f}")
    print("\nlargest layers:")
    layers = [line.split("\t", 1) for line in history.splitlines() if "\t" in line]
    for size, created_by in sorted(layers, key=lambda layer: -_bytes(layer[0]))[:5]:
        print(f"  {size:>8}  {created_by[:100]}")


def _bytes(size: str) -> float:
    units = {"kB": 1e3, "MB": 1e6, "GB": 1e9, "B": 1}
    for unit, factor in units.items():
        if size.endswith(unit):
            return float(size[: -len(unit)]) * factor
    return 0.0


if __name__ == "__main__":
    main()
