"""What the hostile tests share: the job's uid, the prelude of every hostile submission, the web poller."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from grader.grading import GradeResult

UID = 61077
SLUG = "cnn-from-scratch"
NO_RESULT = "no result"  # what the host says when a job ended without status.json

# Hostile code runs at import time and ends with report(...): os._exit skips the harness (and its
# TensorFlow import), so each run costs about a second. PARAMS carries host paths and ports.
PRELUDE = """
import errno, json, os, sys
PARAMS = json.loads({params!r})

def attempt(action):
    try:
        action()
        return "allowed"
    except BaseException as error:
        code = getattr(error, "errno", None)
        return errno.errorcode.get(code, type(error).__name__) if code else type(error).__name__

def report(facts, exit_code=0):
    sys.stdout.write("FACTS " + json.dumps(facts) + "\\n")
    sys.stdout.flush()
    os._exit(exit_code)
"""


@dataclass
class HostileRun:
    result: GradeResult
    reported: dict
    answers: list[int]

    @property
    def facts(self) -> dict:
        """What the submission reported; a run that reported nothing fails here with its verdict and log tail."""
        assert self.reported, (
            f"the submission reported no facts: {self.result.status} {self.result.error_kind}: "
            f"{self.result.message}\n{self.result.log[-1500:]}"
        )
        return self.reported


class WebPoller:
    """A thread asking the web app for /login during the job; the answers prove the server stayed responsive."""

    def __init__(self, app):
        self.client = app.test_client()
        self.answers: list[int] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stopping.is_set() or not self.answers:
            self.answers.append(self.client.get("/login").status_code)
            self.stopping.wait(0.1)

    def __enter__(self) -> WebPoller:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


def facts_from(log: str) -> dict:
    lines = [line for line in log.splitlines() if line.startswith("FACTS ")]
    return json.loads(lines[-1][len("FACTS ") :]) if lines else {}
