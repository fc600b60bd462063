"""How long a progress record takes to show on the open submission page: written -> visible in the browser.

Starts `workshop init` + `workshop serve` on loopback (no worker slot: the bench plays the worker), joins in
Chromium, opens a running submission's page and writes N progress records one at a time, each a new log line
and a new epoch, through the worker's own DatabaseJobStore.report_progress. The page notes (in a
requestAnimationFrame after the change, so at the next paint) when each record's log line and its epoch row
appear; the delay is that moment minus the write. Baseline: the old page reloaded itself every 3 s
(<meta http-equiv="refresh" content="3">); its delay is computed from page loads measured in the same run (a
record waits for the next reload, then for that load).

    .venv/bin/python bench/live_delay.py [--records 30]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENT_PASSWORD = "bench-event-password"  # noqa: S105 - a throwaway instance
REFRESH_SECONDS = 3.0  # the old page's meta refresh
WATCH = """() => {
  window.__seen = {}; window.__epochs = {};
  const note = (store, key) => { if (!(key in store)) requestAnimationFrame(() => { store[key] = Date.now(); }); };
  new MutationObserver(() => {
    const log = document.getElementById("log").textContent;
    for (const match of log.matchAll(/bench record (\\d+)/g)) note(window.__seen, match[1]);
    note(window.__epochs, String(document.querySelectorAll("#history-table tr").length - 1));
  }).observe(document.getElementById("submission"), { childList: true, subtree: true, characterData: true });
}"""


def start_server(instance: Path) -> tuple[subprocess.Popen, str]:
    from server.live_instance import start_serve, workshop_command

    env = {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(instance),
        "WORKSHOP_DATA_DIR": str(instance / "data"),
        "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD,
        "WORKSHOP_INSTRUCTOR_PASSWORD": "bench-instructor-password",
        "WORKSHOP_START_EXECUTOR": "false",
    }
    subprocess.run(workshop_command("init"), env=env, check=True, capture_output=True, cwd=ROOT)
    return start_serve(env, instance / "serve.log", cwd=ROOT)


def join(page, url: str) -> None:
    page.goto(url + "/join")
    page.fill("input[name=event_password]", EVENT_PASSWORD)
    page.fill("input[name=display_name]", "Bench")
    page.fill("input[name=password]", "bench-personal-1")
    page.fill("input[name=password_confirm]", "bench-personal-1")
    page.click("button:has-text('Join')")
    page.wait_for_url(lambda address: "/join" not in address)


def running_job(app):
    """A job held by a pretend worker (its lease far ahead), as after a claim."""
    from sqlalchemy import select

    from grader.executor import ClaimedJob
    from server.db import new_session
    from server.models import Participant, Submission, utcnow

    with new_session(app) as db:
        participant = db.scalar(select(Participant.id).where(Participant.display_name == "Bench"))
        row = Submission(
            participant_id=participant,
            exercise_slug="cnn-from-scratch",
            dataset="synthetic",
            code="def train(data):\n    pass\n",
            status="running",
            claim_token="bench-token",  # noqa: S106 - a pretend claim
            started_at=utcnow() - timedelta(seconds=5),
            lease_expires_at=utcnow() + timedelta(hours=1),
            log="",
        )
        db.add(row)
        db.commit()
        return ClaimedJob(row.id, "bench-token", row.code, row.exercise_slug, row.dataset)


def wait_for_key(page, store: str, key: str, seconds: float = 10.0) -> float:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen = page.evaluate(f"window.{store}[{key!r}]")
        if seen is not None:
            return seen / 1000
        time.sleep(0.01)
    raise AssertionError(f"record {key} did not show within {seconds} s")


def measure(records: int) -> tuple[list[float], list[float], list[float]]:
    """Delays of the log lines and of the epochs, and the page's load times (for the baseline)."""
    from playwright.sync_api import sync_playwright

    from grader.grading import Progress
    from server import create_app
    from server.job_store import DatabaseJobStore
    from server.live_instance import stop_serve

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        instance = Path(folder)
        server, url = start_server(instance)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            app = create_app({"DATABASE_URL": f"sqlite:///{instance / 'db' / 'workshop.db'}", "SECRET_KEY": "x"})
            page = browser.new_page()
            join(page, url)
            job = running_job(app)
            page_url = f"{url}/submissions/{job.submission_id}"
            loads = []
            for _ in range(records):  # the page's load time, what each old meta refresh cost on top of its wait
                started = time.perf_counter()
                page.goto(page_url, wait_until="load")
                loads.append(time.perf_counter() - started)
            page.wait_for_selector("#live-note:has-text('updates live')")
            page.evaluate(WATCH)
            store, log, history, jitter = DatabaseJobStore(app), "", [], random.Random(14)
            lines, epochs = [], []
            for index in range(records):
                time.sleep(jitter.uniform(0.1, 0.9))  # at random phases of the stream's polls
                log += f"Epoch {index + 1}: bench record {index}\n"
                history = [*history, {"epoch": index + 1, "seconds": 1.0, "metrics": {"loss": 1 / (index + 1)}}]
                written = time.time()
                store.report_progress(job, Progress(log, history))
                lines.append(wait_for_key(page, "__seen", str(index)) - written)
                epochs.append(wait_for_key(page, "__epochs", str(index + 1)) - written)
            return lines, epochs, loads
        finally:
            browser.close()
            stop_serve(server, timeout=40)


def meta_refresh_delays(loads: list[float], samples: int = 20000) -> list[float]:
    """The old page: reloads 3 s after each load; a record written at a random moment of that cycle shows when
    the next reload that starts after it has loaded (a record written during a load waits a whole cycle more)."""
    rng = random.Random(3)
    delays = []
    for _ in range(samples):
        load = rng.choice(loads)
        moment = rng.uniform(0, REFRESH_SECONDS + load)  # 0: the page has just shown; it reloads at 3 s
        wait = REFRESH_SECONDS - moment if moment < REFRESH_SECONDS else 2 * REFRESH_SECONDS + load - moment
        delays.append(wait + rng.choice(loads))
    return delays


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.3f} s   p95 {p95:.3f} s   max {ordered[-1]:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=30)
    lines, epochs, loads = measure(parser.parse_args().records)
    print(f"records: {len(lines)}; written by the worker's report_progress -> painted in Chromium (loopback)")
    print(f"log line, server-sent events (rows read every 0.25 s): {percentiles(lines)}")
    print(f"epoch (curves and table redrawn):                      {percentiles(epochs)}")
    print(f"page load, measured ({len(loads)} loads):                  {percentiles(loads)}")
    print(f"baseline, the old 3-s meta refresh (computed):         {percentiles(meta_refresh_delays(loads))}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
