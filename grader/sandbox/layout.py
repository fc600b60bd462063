"""What a job sees in every backend: where the harness, code, data and output are, its environment, its spec."""

from __future__ import annotations

import json
from pathlib import Path

from grader.sandbox.limits import SandboxJob, job_cpus

HARNESS = Path(__file__).parent.parent / "harness.py"
INSIDE_CODE, INSIDE_DATA, INSIDE_OUT, INSIDE_HARNESS = (
    "/job/code",
    "/data",
    "/out",
    "/opt/workshop/harness.py",
)
INSIDE_WEIGHTS = "/opt/workshop/keras-weights"
INSIDE_SPEC = "/job/spec.json"


def sandbox_environment(job: SandboxJob, home: str) -> dict[str, str]:
    """The job's whole environment: an allowlist, nothing inherited from the server."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "KERAS_HOME": f"{home}/.keras",
        "CUDA_VISIBLE_DEVICES": "" if job.gpu is None else "0",  # the job sees only its own GPU, as device 0
        "OMP_NUM_THREADS": str(max(1, int(job_cpus(job.limits)))),
    }


def write_spec(job: SandboxJob, spec: dict) -> Path:
    """The job spec next to the code folder (bound read-only into the sandbox)."""
    spec_path = job.job_dir / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    return spec_path


def inside_spec(job: SandboxJob) -> dict:
    """The job spec with the paths the harness sees inside bwrap and docker."""
    spec = {**job.spec, "code_dir": INSIDE_CODE, "data_dir": INSIDE_DATA, "out_dir": INSIDE_OUT}
    spec["weights_dir"] = INSIDE_WEIGHTS if job.weights_dir and job.weights_dir.is_dir() else None
    return spec
