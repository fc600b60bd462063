"""`make install` on a GPU host: TensorFlow with CUDA (the gpu extra) in place of tensorflow-cpu, never both.

The Makefile runs against a stand-in virtualenv whose ``python -m pip`` only logs what it was asked, and a
stand-in ``nvidia-smi``, so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from paths import PROJECT_ROOT

FAKE_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then shift 2; echo "pip $*" >> "{log}"; exit 0; fi
exec "{python}" "$@"
"""


def run_make(tmp_path: Path, gpu_listing: str | None, *make_args: str) -> list[str]:
    """Run ``make .venv/.installed-stamp`` in a copy of the Makefile and pyproject; returns the pip calls."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed (apt-get install make)")
    work = tmp_path / "project"
    (work / ".venv" / "bin").mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, work / name)
    log = tmp_path / "pip.log"
    python = work / ".venv" / "bin" / "python"
    python.write_text(FAKE_PYTHON.format(log=log, python=sys.executable))
    python.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if gpu_listing is not None:
        (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\nprintf '{gpu_listing}'\n")
        (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}
    done = subprocess.run(
        ["make", "--no-print-directory", ".venv/.installed-stamp", *make_args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    requirements = work / ".venv" / "gpu-requirements.txt"
    calls = log.read_text().splitlines()
    return calls + ([f"requirements: {requirements.read_text()}"] if requirements.exists() else [])


def test_a_host_without_gpus_installs_as_before(tmp_path):
    calls = run_make(tmp_path, None)
    assert calls == ["pip install --quiet --upgrade pip", "pip install --quiet -e .[test]"]


def test_a_host_whose_driver_fails_installs_as_before(tmp_path):
    calls = run_make(tmp_path, "NVIDIA-SMI has failed because it could not communicate with the driver\\n")
    assert calls[-1] == "pip install --quiet -e .[test]"


def test_a_gpu_host_gets_tensorflow_with_cuda_and_no_tensorflow_cpu(tmp_path):
    calls = run_make(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-1234)\\n")
    assert calls[:4] == [
        "pip install --quiet --upgrade pip",
        "pip uninstall --quiet -y tensorflow-cpu",  # an earlier CPU install must not overlay the CUDA build
        "pip install --quiet -r .venv/gpu-requirements.txt",
        "pip install --quiet --no-deps -e .",  # the project itself, without pulling tensorflow-cpu back in
    ]
    requirements = calls[4].removeprefix("requirements: ").splitlines()
    assert "tensorflow[and-cuda]>=2.16" in requirements
    assert not [line for line in requirements if line.startswith("tensorflow-cpu")]
    assert "flask>=3.0" in requirements and "pytest>=8" in requirements  # the rest of the project and its tests


def test_gpu_0_forces_the_cpu_build_and_gpu_1_the_cuda_build(tmp_path):
    assert run_make(tmp_path / "a", "GPU 0: NVIDIA H200\\n", "GPU=0")[-1] == "pip install --quiet -e .[test]"
    assert "pip install --quiet --no-deps -e ." in run_make(tmp_path / "b", None, "GPU=1")
