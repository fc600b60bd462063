"""Backup and restore of a busy event: 200 participants and 2,000 submissions, SQLite (and PostgreSQL at
127.0.0.1:5432 when it answers). Prints backup and restore seconds against a baseline measured in the same run
(a plain copy of the SQLite file; a bare pg_dump / pg_restore) and whether the boards are identical after.

    .venv/bin/python bench/backup_restore.py [--participants 200] [--submissions 2000]
"""

from __future__ import annotations

import argparse
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402
from server.backup import backup, postgresql_args, restore  # noqa: E402
from server.boards import build_board  # noqa: E402
from server.catalog import catalog  # noqa: E402
from server.db import new_session, upgrade_database  # noqa: E402
from server.models import EventSettings, Participant, Submission  # noqa: E402


def make_event(url: str, instance: Path, participants: int, submissions: int):
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-key", "DATABASE_URL": url})
    app.instance_path = str(instance)
    upgrade_database(app)
    slugs = list(catalog(app))
    rng = random.Random(1)
    with new_session(app) as db:
        db.add(EventSettings(id=1, title="Bench", active_dataset="synthetic"))
        people = [Participant(display_name=f"P{n}", name_key=f"p{n}", password_hash="-") for n in range(participants)]  # noqa: S106
        db.add_all(people)
        db.flush()
        for n in range(submissions):
            score = rng.random()
            db.add(
                Submission(
                    participant_id=people[n % participants].id,
                    exercise_slug=slugs[n % len(slugs)],
                    dataset="synthetic",
                    code="def train(data):\n    return None\n" * 20,
                    status="done",
                    public_score=score,
                    private_score=score * 0.9,
                    log="epoch 1/1\n" * 50,
                )
            )
        db.commit()
    return app, slugs


def boards(app, slugs) -> list:
    with app.app_context(), new_session(app) as db:
        return [build_board(db, catalog(app)[slug], instructor=True).as_json(True) for slug in slugs]


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(kind: str, url: str, work: Path, args, baseline) -> None:
    app, slugs = make_event(url, work / kind, args.participants, args.submissions)
    before = boards(app, slugs)
    target = work / f"{kind}.tar.gz"
    base_seconds = baseline(work)
    backup_seconds = timed(lambda: backup(app, target))
    with new_session(app) as db:
        db.execute(delete(Submission))  # the event goes wrong
        db.commit()
    restore_seconds = timed(lambda: restore(app, target))
    identical = boards(app, slugs) == before
    app.extensions["db_engine"].dispose()
    size = target.stat().st_size / 1e6
    print(
        f"{kind:10s} backup {backup_seconds:6.3f} s  restore {restore_seconds:6.3f} s  baseline {base_seconds:6.3f} s "
        f"(backup {backup_seconds / base_seconds:5.1f}x)  archive {size:.2f} MB  boards identical: {identical}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--submissions", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        database = work / "sqlite" / "workshop.db"
        print(f"{args.participants} participants, {args.submissions} submissions")
        measure(
            "sqlite",
            f"sqlite:///{database}",
            work,
            args,
            lambda w: timed(lambda: shutil.copyfile(database, w / "plain-copy.db")),
        )
        measure_postgresql(work, args)


def measure_postgresql(work: Path, args) -> None:
    try:
        import psycopg

        admin = psycopg.connect("host=127.0.0.1 port=5432 dbname=test", autocommit=True, connect_timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure means: not reachable
        print(f"postgresql not measured: {error}")
        return
    name = f"workshop_bench_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://127.0.0.1:5432/{name}"
    try:
        uri, env = postgresql_args(url)

        def bare_dump(w: Path) -> float:  # pg_dump alone, no snapshot, no archive
            command = ["pg_dump", "--format=custom", f"--file={w / 'plain.pgdump'}", f"--dbname={uri}"]
            return timed(lambda: subprocess.run(command, env=env, check=True))  # noqa: S603

        measure("postgresql", url, work, args, bare_dump)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
