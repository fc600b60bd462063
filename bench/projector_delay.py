"""How long a new score takes to reach the projector: insert -> the server-sent event that contains it.

Starts `workshop init` + `workshop serve` on loopback (as tests/browser_kit.py does), logs in as the instructor,
opens /projector/feed with a plain HTTP client, records N scores one at a time straight into the database and
prints p50 and p95 of the delay in seconds. The feed polls every 0.5 s (plus the time a snapshot takes),
so the delay is up to one poll period plus one snapshot.

    .venv/bin/python bench/projector_delay.py [--scores 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR_PASSWORD = "bench-instructor-password"  # noqa: S105 - a throwaway instance


def start_server(instance: Path) -> tuple[subprocess.Popen, str, dict]:
    from server.live_instance import start_serve, workshop_command

    env = {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(instance),
        "WORKSHOP_DATA_DIR": str(instance / "data"),
        "WORKSHOP_EVENT_PASSWORD": "bench-event-password",
        "WORKSHOP_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
        "WORKSHOP_START_EXECUTOR": "false",
    }
    subprocess.run(workshop_command("init"), env=env, check=True, capture_output=True, cwd=ROOT)
    server, url = start_serve(env, instance / "serve.log", cwd=ROOT)
    return server, url, env


def instructor_cookie(url: str) -> str:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(url + "/instructor/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = urllib.parse.urlencode({"csrf_token": token, "password": INSTRUCTOR_PASSWORD}).encode()
    opener.open(url + "/instructor/login", data=body)
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def read_events(url: str, cookie: str, seen: dict, stop: threading.Event) -> None:
    """Note the first moment each display name appears in a `data:` event of the feed."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", "/projector/feed", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200, response.status
    while not stop.is_set():
        line = response.readline().decode()
        if line.startswith("data: "):
            arrived = time.perf_counter()
            for entry in json.loads(line[6:])["exercises"]:
                for row in entry["board"]["rows"]:
                    seen.setdefault(row["display_name"], arrived)
    connection.close()


def record(app, index: int) -> tuple[str, float]:
    from server.db import new_session
    from server.models import Participant, Submission, utcnow
    from server.passwords import name_key

    name = f"Bench {index:02d}"
    with new_session(app) as db:
        participant = Participant(display_name=name, name_key=name_key(name), password_hash="x")  # noqa: S106 - never logs in
        db.add(participant)
        db.flush()
        db.add(
            Submission(
                participant_id=participant.id,
                exercise_slug="cnn-from-scratch",
                dataset="synthetic",
                code="def train(data):\n    pass\n",
                status="done",
                public_score=0.5 + index / 1000,  # each new one takes first place: always among the rows shown
                private_score=0.5,
                started_at=utcnow(),
                finished_at=utcnow(),
            )
        )
        db.commit()
        return name, time.perf_counter()


def measure(scores: int) -> list[float]:
    from server import create_app
    from server.live_instance import stop_serve

    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        server, url, env = start_server(instance)
        try:
            app = create_app({"DATABASE_URL": f"sqlite:///{instance / 'db' / 'workshop.db'}", "SECRET_KEY": "x"})
            seen: dict[str, float] = {}
            stop = threading.Event()
            reader = threading.Thread(target=read_events, args=(url, instructor_cookie(url), seen, stop), daemon=True)
            reader.start()
            time.sleep(1.0)  # the first snapshot
            delays, jitter = [], random.Random(11)
            for index in range(scores):
                name, inserted = record(app, index)
                deadline = time.perf_counter() + 10
                while name not in seen and time.perf_counter() < deadline:
                    time.sleep(0.005)
                delays.append(seen[name] - inserted)
                time.sleep(jitter.uniform(0.1, 0.9))  # at random phases of the feed's polls
            stop.set()
            return delays
        finally:
            stop_serve(server, timeout=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=20)
    delays = sorted(measure(parser.parse_args().scores))
    p95 = delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
    print(f"scores: {len(delays)}; insert -> event on the projector feed (polls every 0.5 s)")
    print(f"p50 {statistics.median(delays):.3f} s   p95 {p95:.3f} s   max {delays[-1]:.3f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
