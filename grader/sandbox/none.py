"""The ``none`` backend: the harness as a plain subprocess, for development on hosts without bubblewrap."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from grader.sandbox.base import Sandbox
from grader.sandbox.layout import sandbox_environment, write_spec
from grader.sandbox.limits import SandboxJob, SandboxResult
from grader.sandbox.process import run_contained


class NoSandbox(Sandbox):
    """Plain subprocess, same harness. Unsafe: only for development on hosts without bubblewrap."""

    name = "none"

    def check_available(self) -> None:
        """Always available; says loudly that it isolates nothing."""
        print(
            "WARNING: WORKSHOP_SANDBOX=none runs participants' code WITHOUT ANY ISOLATION: it can read the "
            "labels, the database and the server's secrets. Use it only on a development machine.",
            file=sys.stderr,
        )

    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` as a plain subprocess of this user, with the host's paths in the spec."""
        spec = {
            **job.spec,
            "code_dir": str(job.code_dir),
            "data_dir": str(job.data_dir),
            "out_dir": str(job.out_dir),
            "weights_dir": str(job.weights_dir) if job.weights_dir and job.weights_dir.is_dir() else None,
        }
        spec_path = write_spec(job, spec)
        home = job.job_dir / "home"
        home.mkdir(exist_ok=True)
        argv = [sys.executable, "-I", "-B", str(program), str(spec_path)]
        return run_contained(argv, sandbox_environment(job, str(home)), job.limits, None, on_poll)

    def release(self, job: SandboxJob) -> None:
        """Nothing to undo: the none backend mounts nothing."""
