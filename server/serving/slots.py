"""The worker slots' process of a root serve: started, watched and restarted by serve, dying with it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger("gunicorn.error")  # configured by gunicorn by the time the supervisor speaks


class SlotSupervisor:
    """Keeps one `workshop worker --slots N` child running as root until stopped.

    The child is started with posix_spawn, not subprocess.Popen: Popen waits on a pipe until the child has
    exec'd, and gunicorn's master forks web workers meanwhile, which inherit that pipe and keep Popen
    waiting for as long as they live. gunicorn's master also reaps every child, so the child's exit
    status may be gone: whether it lives is all that is asked.
    """

    def __init__(self, slots: int, stop_timeout: float = 15, gpus: tuple[int, ...] = ()) -> None:
        self.slots, self.gpus = slots, tuple(gpus)
        self.stop_timeout = stop_timeout
        self.stopping = threading.Event()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "server.serving", "--parent", str(os.getpid()), "--slots", str(self.slots)]
        return command + (["--gpus", ",".join(str(gpu) for gpu in self.gpus)] if self.gpus else [])

    def start(self) -> None:
        # the thread that starts the child also watches it: the child's parent-death signal follows that thread
        self.thread = threading.Thread(target=self._run, name="slot-process-supervisor", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(self.stop_timeout + 10)

    def _run(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            began = time.monotonic()
            # a session of its own: Ctrl-C in the terminal reaches serve, which then stops the slots in order
            self.pid = os.posix_spawn(sys.executable, self.command(), os.environ, setsid=True)
            log.info("Worker slots (%d) running as root in process %d", self.slots, self.pid)
            while self._alive() and not self.stopping.wait(0.5):
                pass
            if self.stopping.is_set():
                break
            delay = 1.0 if time.monotonic() - began > 60 else min(delay * 2, 30.0)
            log.error("The worker slots' process %d stopped; starting it again in %.0f s", self.pid, delay)
            self.stopping.wait(delay)
        self._terminate()

    def _alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by gunicorn's master
            return False
        return pid == 0

    def _terminate(self) -> None:
        for sig, seconds in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            if not self._alive():
                return
            if sig == signal.SIGKILL:
                log.warning(
                    "The worker slots' process %d did not stop in %.0f s; killing it", self.pid, self.stop_timeout
                )
            os.kill(self.pid, sig)
            deadline = time.monotonic() + seconds
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.1)
