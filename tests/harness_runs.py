"""Running the harness directly (no sandbox) on one piece of code, as the harness tests do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from grader.sandbox import HARNESS


def run_harness(folder: Path, data_dir: Path, code: str, timeout: float = 180, **spec_options) -> tuple[dict, str, str]:
    """Run the harness on ``code`` in ``folder``; returns its status.json, its stdout and its stderr."""
    code_dir, out_dir, home = folder / "code", folder / "out", folder / "home"
    for path in (code_dir, out_dir, home):
        path.mkdir(parents=True, exist_ok=True)
    (code_dir / "submission.py").write_text(code, encoding="utf-8")
    spec = {
        "image_size": 32,
        "time_limit": 60,
        "predict_reserve_seconds": 4,
        "module": "submission",
        "code_dir": str(code_dir),
        "data_dir": str(data_dir / "synthetic" / "public"),
        "out_dir": str(out_dir),
        "weights_dir": None,
        **spec_options,
    }
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.run(
        [sys.executable, "-I", "-B", str(HARNESS), str(folder / "spec.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return json.loads((out_dir / "status.json").read_text()), process.stdout, process.stderr
