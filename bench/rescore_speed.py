"""Rescoring a whole exercise from kept predictions: 1,000 scored submissions on the synthetic set (SQLite).
Prints submissions per second against baselines measured in the same run: only reading and checking the kept
CSVs, and reading them plus scoring without the database (so the database's share shows).

    .venv/bin/python bench/rescore_speed.py [--submissions 1000] [--test 400]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.data import dataset_paths, read_test_ids, read_test_labels  # noqa: E402
from grader.data.synth import generate_synthetic  # noqa: E402
from grader.grading import write_predictions  # noqa: E402
from grader.scoring import score_predictions  # noqa: E402
from server import create_app  # noqa: E402
from server.db import new_session, upgrade_database  # noqa: E402
from server.job_store import predictions_path  # noqa: E402
from server.models import EventSettings, Participant, Submission  # noqa: E402
from server.rescoring import read_kept, rescore_exercise  # noqa: E402

SLUG = "cnn-from-scratch"


def make_event(root: Path, submissions: int, test: int):
    data = root / "data"
    generate_synthetic(dataset_paths(data, "synthetic"), seed=1, train=32, val=16, test=test, size=16)
    config = {"TESTING": True, "SECRET_KEY": "bench-key", "DATABASE_URL": f"sqlite:///{root / 'bench.db'}"}
    app = create_app(config | {"DATA_DIR": str(data), "WORK_DIR": str(root / "jobs")})
    upgrade_database(app)
    ids = read_test_ids(dataset_paths(data, "synthetic"))
    rng = random.Random(1)
    with new_session(app) as db:
        db.add(EventSettings(id=1, title="Bench", active_dataset="synthetic"))
        people = [Participant(display_name=f"P{n}", name_key=f"p{n}", password_hash="-") for n in range(50)]  # noqa: S106
        db.add_all(people)
        db.flush()
        rows = [
            Submission(
                participant_id=people[n % 50].id, exercise_slug=SLUG, dataset="synthetic", code="#", status="done"
            )
            for n in range(submissions)
        ]
        db.add_all(rows)
        db.commit()
        for row in rows:
            write_predictions({image_id: rng.random() for image_id in ids}, predictions_path(app, row.id))
        return app, [row.id for row in rows], dataset_paths(data, "synthetic")


def timed(label: str, count: int, work) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"{label:<44} {seconds:7.2f} s  {count / seconds:8.0f} submissions/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--test", type=int, default=400, help="test images in the synthetic set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app, ids, paths = make_event(Path(folder), args.submissions, args.test)
        labels = read_test_labels(paths)
        expected = list(labels.labels)
        print(f"{args.submissions} scored submissions, {len(expected)} test images each")
        read_only = timed(
            "baseline: read and check the kept CSVs", len(ids), lambda: [read_kept(app, i, expected) for i in ids]
        )
        timed(
            "baseline: read + score, no database",
            len(ids),
            lambda: [score_predictions(read_kept(app, i, expected), labels) for i in ids],
        )
        outcome = None

        def rescore_all():
            nonlocal outcome
            with new_session(app) as db:
                outcome = rescore_exercise(app, db, SLUG)

        whole = timed("workshop rescore --exercise (all, committed)", len(ids), rescore_all)
        print(
            f"rescored {len(outcome.done)}, refused {len(outcome.refused)};"
            f" {whole / read_only:.1f}x the read-only baseline"
        )
        app.extensions["db_engine"].dispose()


if __name__ == "__main__":
    main()
