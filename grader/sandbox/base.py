"""The interface every backend implements, and the base of the backends that isolate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from grader.sandbox.layout import HARNESS
from grader.sandbox.limits import SandboxJob, SandboxResult
from grader.sandbox.locks import SlotLock


class Sandbox(ABC):
    """What the executor needs of a backend: ``check_available``, ``run_program``, ``release``."""

    name = ""

    @abstractmethod
    def check_available(self) -> None:
        """Raise SandboxUnavailable when this backend cannot isolate a job on this host."""

    @abstractmethod
    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` with the job's spec under this backend and report how it ended."""

    @abstractmethod
    def release(self, job: SandboxJob) -> None:
        """Undo what the run left for the host to read (e.g. unmount the output folder) once it was read."""

    def run(self, job: SandboxJob, on_poll: Callable[[str], None] | None = None) -> SandboxResult:
        """Run the harness on the job's submission; ``on_poll`` gets the log so far, about once a second."""
        return self.run_program(job, HARNESS, on_poll)


class IsolatedSandbox(Sandbox):
    """A backend that isolates: one job per slot uid at a time, each checked for isolation first."""

    def run_program(
        self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None = None
    ) -> SandboxResult:
        """Run ``program`` (the harness, or the self-check's probe) with the job's spec, inside the sandbox."""
        self.check_available()
        with SlotLock(uid=job.uid):
            return self._run_locked(job, program, on_poll)

    @abstractmethod
    def _run_locked(self, job: SandboxJob, program: Path, on_poll: Callable[[str], None] | None) -> SandboxResult:
        """Run ``program`` while this process holds the job's uid."""
