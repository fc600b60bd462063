"""Fair turns under load: 30 simulated participants fill the queue; how evenly do the slots share their time?

Runs the real job store (``DatabaseJobStore.claim_next_job``) and the real ETA (``server.fair_queue``) on a
real database; only the jobs are simulated (each "runs" by sleeping its duration). Participants differ in how
often they submit (think time between a result and their next submission) and in how long their jobs run
(small models to heavy ones). Each participant keeps at most one job open (the default limit).

Printed, for the fair order and for plain first-come-first-served measured in the same run:
- among the participants who always had a job waiting (the eager ones), the max/min ratio of their share
  of slot time (1.0 = perfectly equal), and the largest share against an equal share;
- the ETA's error against the real start time (median and p90 of |start - eta|, in seconds and in job lengths).

Usage: .venv/bin/python bench/fair_share.py [--seconds 20] [--slots 4] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402
from server.db import new_session, upgrade_database  # noqa: E402
from server.models import EventSettings, Participant, Submission, WorkerSlot, utcnow  # noqa: E402
from server.passwords import hash_password, name_key  # noqa: E402

PARTICIPANTS = 30
BASE_JOB = 0.08  # seconds: the shortest simulated job


@dataclass
class Person:
    id: int
    think: float  # seconds between a result and the next submission
    job: float  # seconds each of their jobs runs
    next_submit: float = 0.0
    open_job: int | None = None
    slot_time: float = 0.0
    eager: bool = False


@dataclass
class Run:
    people: list[Person]
    eta: dict[int, float] = field(default_factory=dict)  # submission id -> predicted start (monotonic)
    started: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_people(rng: random.Random) -> list[Person]:
    people = []
    for index in range(PARTICIPANTS):
        eager = index < 10  # a third resubmit at once: they always have a job waiting
        think = 0.0 if eager else rng.uniform(0.5, 6.0)
        job = BASE_JOB * rng.choice([1, 1, 2, 3, 5])  # heavy models run five times as long
        people.append(Person(id=0, think=think, job=job, eager=eager))
    return people


def make_app(database_url: str, folder: Path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "DATABASE_URL": database_url,
            "DATA_DIR": str(folder / "data"),
            "WORK_DIR": str(folder / "jobs"),
            "EXERCISES_DIR": str(ROOT / "exercises"),
        }
    )
    upgrade_database(app)
    with new_session(app) as db:
        db.add(EventSettings(id=1, title="bench", event_password_hash=hash_password("x" * 12)))
        db.commit()
    return app


def add_people(app, people: list[Person], tag: str) -> None:
    with new_session(app) as db:
        for index, person in enumerate(people):
            name = f"{tag}-{index}"
            row = Participant(display_name=name, name_key=name_key(name), password_hash="-")  # noqa: S106 - no login
            db.add(row)
            db.flush()
            person.id = row.id
        db.commit()


def submit(app, run: Run, person: Person, now: float) -> None:
    from server.fair_queue import queue_place

    with new_session(app) as db:
        row = Submission(participant_id=person.id, exercise_slug="cnn-from-scratch", dataset="synthetic", code="x")
        db.add(row)
        db.commit()
        place = queue_place(db, row.id)
        with run.lock:
            person.open_job = row.id
            if place is not None and place.eta is not None:
                run.eta[row.id] = now + (place.eta - utcnow()).total_seconds()


def slot_loop(app, run: Run, name: str, stop: threading.Event, by_id: dict[int, Person]) -> None:
    from server.job_store import DatabaseJobStore

    store = DatabaseJobStore(app)
    while not stop.is_set():
        job = store.claim_next_job(name, 60)
        if job is None:
            time.sleep(0.01)
            continue
        with new_session(app) as db:
            person = by_id[db.get(Submission, job.submission_id).participant_id]
        started = time.monotonic()
        with run.lock:
            run.started[job.submission_id] = started
        time.sleep(person.job)
        with new_session(app) as db:
            row = db.get(Submission, job.submission_id)
            row.status, row.seconds, row.finished_at, row.public_score = "done", person.job, utcnow(), 0.5
            db.commit()
        with run.lock:
            person.slot_time += time.monotonic() - started
            person.open_job = None
            person.next_submit = time.monotonic() + person.think


def heartbeat(app, slots: int) -> None:
    with new_session(app) as db:
        for index in range(slots):
            name = f"bench:slot-{index}"
            row = db.query(WorkerSlot).filter_by(name=name).one_or_none()
            if row is None:
                db.add(WorkerSlot(name=name, state="busy", heartbeat_at=utcnow()))
            else:
                row.heartbeat_at = utcnow()
        db.commit()


def simulate(app, people: list[Person], seconds: float, slots: int) -> Run:
    run = Run(people)
    by_id = {person.id: person for person in people}
    stop = threading.Event()
    heartbeat(app, slots)
    threads = [
        threading.Thread(target=slot_loop, args=(app, run, f"bench:{i}", stop, by_id), daemon=True)
        for i in range(slots)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + seconds
    last_beat = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        for person in people:
            with run.lock:
                due = person.open_job is None and now >= person.next_submit
            if due:
                submit(app, run, person, now)
        if now - last_beat > 5:
            heartbeat(app, slots)
            last_beat = now
        time.sleep(0.005)
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
    return run


def report(label: str, run: Run) -> dict:
    eager = [person.slot_time for person in run.people if person.eager]
    total = sum(person.slot_time for person in run.people)
    equal = total / len(run.people)
    errors = [abs(run.started[job] - eta) for job, eta in run.eta.items() if job in run.started]
    job_median = statistics.median(person.job for person in run.people)
    result = {
        "ratio": max(eager) / min(eager),
        "top_vs_equal": max(person.slot_time for person in run.people) / equal,
        "eta_median": statistics.median(errors) if errors else float("nan"),
        "eta_p90": statistics.quantiles(errors, n=10)[-1] if len(errors) >= 10 else float("nan"),
        "jobs": len(run.started),
    }
    print(
        f"{label:<22} eager max/min share {result['ratio']:5.2f}   largest share / equal share "
        f"{result['top_vs_equal']:5.2f}   ETA error median {result['eta_median']:.2f} s "
        f"({result['eta_median'] / job_median:.1f} job lengths), p90 {result['eta_p90']:.2f} s   "
        f"jobs {result['jobs']}"
    )
    return result


def first_come_first_served(db, now=None, ready_only=False):
    from sqlalchemy import select

    return list(db.scalars(select(Submission.id).where(Submission.status == "queued").order_by(Submission.id)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    import server.job_store as job_store

    original = job_store.fair_order
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, order in (("fair order", original), ("first come first served", None)):
            url = args.database_url or f"sqlite:///{Path(folder) / (label[:4] + '.db')}"
            app = make_app(url, Path(folder))
            people = make_people(random.Random(args.seed))
            add_people(app, people, label[:4])
            job_store.fair_order = order or first_come_first_served
            try:
                results[label] = report(label, simulate(app, people, args.seconds, args.slots))
            finally:
                job_store.fair_order = original
                with new_session(app) as db:  # nothing of this run is left for the next
                    db.query(Submission).filter(Submission.status.in_(("queued", "running"))).update(
                        {"status": "cancelled"}
                    )
                    db.commit()
                app.extensions["db_engine"].dispose()
    fair, fifo = results["fair order"], results["first come first served"]
    print(f"eager share spread, fair / FCFS: {fair['ratio'] / fifo['ratio']:.2f} (below 1: the fair order is fairer)")


if __name__ == "__main__":
    main()
