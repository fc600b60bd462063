"""`python -m server.serving --parent PID --slots N [--gpus 0,2]`: the worker slots' process of a root serve.

It lives here, apart from the package, because it builds the app (which imports the package).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys


def _die_with_parent(parent: int) -> None:
    """SIGTERM when serve dies, however it dies; exit now if it already has."""
    PR_SET_PDEATHSIG = 1  # noqa: N806 - the C name
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def slot_process_main(argv: list[str]) -> None:
    """Entry point of the slots' child: `workshop worker --slots N`, tied to the serve process that started it."""
    import argparse

    parser = argparse.ArgumentParser(prog="workshop serve (worker slots)")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--slots", type=int, required=True)
    parser.add_argument("--gpus", default="", help="GPU indices, one slot each (serve chose them)")
    args = parser.parse_args(argv)
    gpus = tuple(int(part) for part in args.gpus.split(",") if part)
    _die_with_parent(args.parent)
    from grader.sandbox import SandboxUnavailable
    from server.app import create_app
    from server.executor_runtime import WorkerFailed, run_worker

    app = create_app()
    try:
        with app.app_context():
            run_worker(app, args.slots, gpus, say=print)
    except (WorkerFailed, SandboxUnavailable) as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    slot_process_main(sys.argv[1:])
