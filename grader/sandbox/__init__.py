"""Sandbox backends that run the harness on untrusted code: ``bwrap`` (default), ``docker``, ``none`` (development).

Every backend takes a :class:`SandboxJob` and returns a :class:`SandboxResult`; the registry
``SANDBOXES`` maps ``WORKSHOP_SANDBOX`` names to backends. The layers and what each one stops are
described in SECURITY.md; ``workshop sandbox check`` proves them on a host.

Modules: ``limits`` (jobs, limits, results), ``layout`` (what a job sees), ``process`` (one contained run),
``host`` (processes and GPUs), ``mounts``, ``cgroups``, ``seccomp``, ``locks`` (uid claims), ``base`` and
one module per backend, ``probe`` and ``check`` (``workshop sandbox check``).
"""

from __future__ import annotations

from collections.abc import Callable

from grader.sandbox.base import IsolatedSandbox, Sandbox
from grader.sandbox.bwrap import BwrapSandbox, bwrap_argv
from grader.sandbox.docker import DockerSandbox, docker_argv
from grader.sandbox.host import gpu_holders, processes_of_uid, sweep_uid
from grader.sandbox.layout import (
    HARNESS,
    INSIDE_CODE,
    INSIDE_DATA,
    INSIDE_HARNESS,
    INSIDE_OUT,
    INSIDE_SPEC,
    INSIDE_WEIGHTS,
    sandbox_environment,
)
from grader.sandbox.limits import BASE_UID, Limits, SandboxJob, SandboxResult, SandboxUnavailable
from grader.sandbox.locks import SlotLock
from grader.sandbox.mounts import unmount_stale_scratch
from grader.sandbox.none import NoSandbox
from grader.sandbox.process import LogCapture, run_contained

SANDBOXES: dict[str, Callable[..., Sandbox]] = {"bwrap": BwrapSandbox, "docker": DockerSandbox, "none": NoSandbox}


def get_sandbox(name: str, **options) -> Sandbox:
    """The backend registered as ``name``; ``options`` go to its constructor (e.g. ``image`` for docker)."""
    try:
        factory = SANDBOXES[name]
    except KeyError:
        raise SandboxUnavailable(f"unknown sandbox {name!r}; choose one of {', '.join(SANDBOXES)}") from None
    return factory(**options)


__all__ = [
    "BASE_UID",
    "HARNESS",
    "INSIDE_CODE",
    "INSIDE_DATA",
    "INSIDE_HARNESS",
    "INSIDE_OUT",
    "INSIDE_SPEC",
    "INSIDE_WEIGHTS",
    "SANDBOXES",
    "BwrapSandbox",
    "DockerSandbox",
    "IsolatedSandbox",
    "Limits",
    "LogCapture",
    "NoSandbox",
    "Sandbox",
    "SandboxJob",
    "SandboxResult",
    "SandboxUnavailable",
    "SlotLock",
    "bwrap_argv",
    "docker_argv",
    "get_sandbox",
    "gpu_holders",
    "processes_of_uid",
    "run_contained",
    "sandbox_environment",
    "sweep_uid",
    "unmount_stale_scratch",
]
