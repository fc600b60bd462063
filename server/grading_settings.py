"""The one place that turns the server's configuration (WORKSHOP_*) into the settings every grading run uses.

Workers, ``workshop grade``, ``workshop exercises check`` and the sandbox self-check all build them here, so
they cannot drift apart (kept out of server/config.py: importing the grader there would load NumPy for
every ``import server``).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from grader.grading import GradingSettings


def grading_settings(app: Flask, sandbox: str | None = None, warm: bool = False) -> GradingSettings:
    """How this server grades; ``sandbox`` names another backend than WORKSHOP_SANDBOX (``sandbox check``).

    The Docker image (WORKSHOP_DOCKER_IMAGE) is an option of the docker backend only.
    """
    name = sandbox or app.config["SANDBOX"]
    options = {"image": app.config["DOCKER_IMAGE"]} if name == "docker" and app.config.get("DOCKER_IMAGE") else {}
    return GradingSettings(
        sandbox=name,
        sandbox_options=options,
        work_dir=Path(app.config["WORK_DIR"]),
        weights_dir=Path(app.config["KERAS_HOME"]) / "models",
        # worker slots only (warm=True); `workshop grade` and `exercises check` stay cold
        warm_slots=warm and switch_on(app.config.get("WARM_SLOTS")),
        warm_max_seconds=float(app.config.get("WARM_MAX_SECONDS", 600)),
        slots_per_gpu=max(1, int(app.config.get("SLOTS_PER_GPU", 1))),
    )


def switch_on(value: object) -> bool:
    """A WORKSHOP_* switch: True, 1, "1", "true", "on", "yes" (JSON-parsed or not) are on."""
    return value is True or value == 1 or str(value).strip().lower() in ("1", "true", "on", "yes")
