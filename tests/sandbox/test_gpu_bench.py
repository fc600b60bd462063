"""bench/gpu_check.py runs on a machine without GPUs (saying so) and as a dry run on fake device nodes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from paths import PROJECT_ROOT

BENCH = PROJECT_ROOT / "bench" / "gpu_check.py"


def run_bench(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run([sys.executable, str(BENCH), *args], env=env, capture_output=True, text=True, timeout=300)


def test_without_a_gpu_it_skips_the_gpu_rows_and_passes():
    done = run_bench(path="/usr/sbin:/usr/bin:/sbin:/bin")  # no nvidia-smi
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no GPU: skipped the GPU rows" in done.stdout
    assert done.stdout.rstrip().endswith("0 passed, 0 failed, 1 skipped")


@pytest.mark.sandbox
@pytest.mark.slow  # TensorFlow is imported inside the sandbox
def test_a_dry_run_on_fake_nodes_checks_each_gpu_and_prints_one_summary(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (dev / name).write_text("")
        (dev / name).chmod(0o666)
    done = run_bench("--dev-dir", str(dev), path="/usr/sbin:/usr/bin:/sbin:/bin")
    summary = done.stdout.split(" summary ", 1)[1]
    assert done.returncode == 1  # no CUDA driver behind fake nodes: the driver rows fail, as they must
    for gpu in (0, 1):
        assert re.search(rf"GPU {gpu}: a job sees only its own +PASS +GPU nodes \['nvidia{gpu}'\]", summary)
        assert re.search(rf"GPU {gpu}: the CUDA driver counts one device +FAIL", summary)
    assert "transfer-learning reference, GPU vs CPU" in summary and "dry run" in summary
    assert done.stdout.count(" summary ") == 1
