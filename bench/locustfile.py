"""Locust's participants for bench/load.py (run by it; see there). One user = one participant in the room.

Each joins with the event password (a display name of its own), then, with a few seconds between actions as a
person reading and typing: reads the exercise list and its exercise's page, submits now and then, polls its
open submission as the page's script does (the JSON every 2.5 s while it waits; the page when it ends) and
reads the leaderboard. A second submission while one is still open is refused by the event's limit
(MAX_OPEN_SUBMISSIONS, 400) and a spent quota answers 429: both are counted as expected outcomes under a
name of their own, never as errors.

Configured by bench/load.py through LOAD_EVENT_PASSWORD, LOAD_EXERCISES (comma-separated slugs), LOAD_RUN_ID and
LOAD_RAMP_JSON: where the figures of the ramp go once every participant has joined; the figures start afresh then,
for the steady part.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time

from load_pages import (
    CODE,
    OPEN_STATUSES,
    REFUSED,
    RETRIED,
    csrf_token,
    expected_refusal,
    join_form,
    problem,
    stale_connection,
    submitted_id,
)
from locust import FastHttpUser, between, events, task

EVENT_PASSWORD = os.environ.get("LOAD_EVENT_PASSWORD", "")
EXERCISES = [slug for slug in os.environ.get("LOAD_EXERCISES", "cnn-from-scratch").split(",") if slug]
RUN_ID = os.environ.get("LOAD_RUN_ID", "0")
_numbers = itertools.count(1)
_joined: list = []  # participants whose join has been answered


class Participant(FastHttpUser):
    wait_time = between(1.0, 4.0)  # a person reading, typing, switching tabs

    def on_start(self) -> None:
        self.exercise = random.choice(EXERCISES)
        self.submission: int | None = None
        self.status = ""
        self.token = ""
        try:
            self.join()
        finally:
            _joined.append(self)

    def join(self) -> None:
        name = f"Load {RUN_ID}-{os.getpid() % 1000}-{next(_numbers)}"
        form = self.client.get("/join", name="GET /join")
        data = join_form(csrf_token(form.text), EVENT_PASSWORD, name)
        self.post("/join", data, "POST /join", self.joined)

    def joined(self, response) -> None:
        if response.status_code != 302:
            response.failure(f"join answered {response.status_code}: {why(response)}")

    def post(self, path: str, data: dict, name: str, check) -> None:
        """POST as a browser does: once more when the server had just closed the kept-alive connection (gunicorn
        closes idle ones after 2 s; a browser retries such a request without a word), counted apart."""
        for attempt in (1, 2):
            with self.client.post(path, data=data, name=name, allow_redirects=False, catch_response=True) as response:
                if attempt == 1 and stale_connection(response.status_code, getattr(response, "error", None)):
                    response.request_meta["name"] = RETRIED
                    response.success()
                    continue
                check(response)
                return

    @task(3)
    def exercise_list(self) -> None:
        self.client.get("/", name="GET / (exercise list)")

    @task(3)
    def exercise_page(self) -> None:
        page = self.client.get(f"/exercises/{self.exercise}", name="GET /exercises/[slug]")
        self.token = csrf_token(page.text) or self.token

    @task(3)
    def leaderboard(self) -> None:
        self.client.get(f"/leaderboard/{self.exercise}", name="GET /leaderboard/[slug]")

    @task(10)
    def poll_submission(self) -> None:
        """The page's script: the JSON while the submission is open, the page once when it ends."""
        if self.submission is None:
            return
        if self.status in OPEN_STATUSES or not self.status:
            answer = self.client.get(f"/submissions/{self.submission}.json", name="GET /submissions/[id].json")
            try:
                status = answer.json().get("status", "")
            except (ValueError, AttributeError):
                return
            if self.status in OPEN_STATUSES and status not in OPEN_STATUSES:
                self.client.get(f"/submissions/{self.submission}", name="GET /submissions/[id] (page)")
            self.status = status

    @task(1)
    def submission_page(self) -> None:
        if self.submission is not None:
            self.client.get(f"/submissions/{self.submission}", name="GET /submissions/[id] (page)")

    @task(2)
    def submit(self) -> None:
        if not self.token:
            self.exercise_page()
        if not self.token:  # the exercise page did not come (counted there): a person could not submit either
            return
        data = {"csrf_token": self.token, "code": CODE, "seed": ""}
        self.post(f"/exercises/{self.exercise}/submit", data, "POST /exercises/[slug]/submit", self.submitted)

    def submitted(self, response) -> None:
        submission = submitted_id(response.headers.get("Location") if response.headers else None)
        if response.status_code == 302 and submission is not None:
            self.submission, self.status = submission, "queued"
            response.success()
        elif expected_refusal(response.status_code, response.text):
            response.request_meta["name"] = REFUSED  # counted apart: the event's limits at work, not an error
            response.success()
        else:
            response.failure(f"submit answered {response.status_code}: {why(response)}")


@events.spawning_complete.add_listener
def _after_everyone_joined(user_count: int, **_kwargs) -> None:
    """Once every participant has joined: the ramp's figures to LOAD_RAMP_JSON, then the figures start afresh."""
    import gevent

    def wait_then_write() -> None:
        while len(_joined) < user_count:
            gevent.sleep(0.1)
        _write_ramp_figures(user_count)

    gevent.spawn(wait_then_write)


def _write_ramp_figures(user_count: int) -> None:
    """The ramp's figures, in the columns of Locust's own CSV, then a fresh start for the steady part."""
    runner = _environment.get("runner")
    if runner is None:
        return
    stats = runner.stats
    rows = [_row(entry) for entry in sorted(stats.entries.values(), key=lambda entry: entry.name)]
    rows.append({**_row(stats.total), "Name": "Aggregated"})
    failures = [
        {"Method": error.method, "Name": error.name, "Error": str(error.error), "Occurrences": error.occurrences}
        for error in stats.errors.values()
    ]
    figures = {"users": user_count, "rows": rows, "failures": failures, "ended_at": time.time()}
    if path := os.environ.get("LOAD_RAMP_JSON"):
        with open(path, "w") as handle:
            json.dump(figures, handle)
    stats.reset_all()


_environment: dict = {}


@events.init.add_listener
def _remember_runner(environment, **_kwargs) -> None:
    _environment["runner"] = environment.runner


def _row(entry) -> dict:
    percentile = entry.get_response_time_percentile
    return {
        "Type": entry.method or "",
        "Name": entry.name,
        "Request Count": entry.num_requests,
        "Failure Count": entry.num_failures,
        "50%": percentile(0.5),
        "95%": percentile(0.95),
        "99%": percentile(0.99),
        "Max Response Time": entry.max_response_time or 0,
        "Requests/s": entry.total_rps,
    }


def why(response) -> str:
    """What the page says went wrong, else the connection's error (a response without one has no ``error``)."""
    return problem(response.text, getattr(response, "error", None))
