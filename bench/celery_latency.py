"""The latency the Celery executor adds from submit to a job starting: the median of submit -> claim (the row's
created_at to its started_at, both stamped by the server) for the local executor (a slot thread woken in the
web process) and for Celery (a ticket through RabbitMQ to a remote worker process, which claims over the worker
API), in the same run, on loopback. Grading is a stub that returns at once: only the dispatch is measured.

Needs RabbitMQ on WORKSHOP_BROKER_URL (default 127.0.0.1:5672). Usage:
    .venv/bin/python bench/celery_latency.py [--samples 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery_rig import ROOT, Rig  # noqa: E402

from grader.executor import ExecutorSettings, LocalExecutor  # noqa: E402
from grader.grading import GradeResult  # noqa: E402
from server.job_store import DatabaseJobStore  # noqa: E402

CODE = "def train(data):\n    return None\n"


def stub_grade(job, uid, on_progress, gpu=None) -> GradeResult:
    return GradeResult(status="done", public_score=0.5, private_score=0.5, seconds=0.0)


def stub_upload(job, uid, on_progress, gpu=None) -> GradeResult:
    """A remote slot's stub: at once, the output of a job that predicted 0.5 for every public test image."""
    from grader.remote_run import RunOutput, UploadedRun

    ids = Path(os.environ["BENCH_TEST_INDEX"]).read_text().split()[1:]
    predictions = "image_id,malignant\n" + "".join(f"{image_id},0.5\n" for image_id in ids)
    files = {"predictions.csv": predictions.encode(), "status.json": b'{"ok": true}'}
    return UploadedRun(status="uploaded", output=RunOutput(0, False, False, "", 0.0, [], files))


def latency(rig: Rig, submission_id: int) -> float:
    row = rig.wait(lambda: (r := rig.row(submission_id)).is_terminal and r, 60, "the stub job finishing")
    return (row.started_at - row.created_at).total_seconds()


def measure(rig: Rig, samples: int, notify=None) -> list[float]:
    values = []
    for _ in range(samples):
        values.append(latency(rig, rig.submit(CODE, notify=notify)))
        time.sleep(0.3)  # an idle worker, as between real submissions
    return values


def consumer() -> None:
    """The Celery side: one remote slot process (as `workshop worker`), grading with the stub."""
    from server import create_app
    from server.celery_worker import _consume
    from server.executor_runtime import job_store_for

    app = create_app()
    store, _ = job_store_for(app, remote=True)
    executor = LocalExecutor(store, stub_upload, ExecutorSettings(heartbeat_seconds=3600))
    with app.app_context():
        _consume(app, executor, 0, None, print)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--consumer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        return consumer()
    with tempfile.TemporaryDirectory(prefix="celery-latency-") as root:
        rig = Rig(Path(root))
        rig.dispatcher.interval = 3600  # no sweeps while the local executor runs (they would publish its jobs)
        local = LocalExecutor(DatabaseJobStore(rig.app), stub_grade, ExecutorSettings(slots=1))
        local.start()
        try:
            local_values = measure(rig, args.samples, notify=local.notify)
        finally:
            local.stop()
        env = rig.worker_env("latency") | {"BENCH_TEST_INDEX": str(Path(root, "data/synthetic/public/test.csv"))}
        process = subprocess.Popen(
            [sys.executable, __file__, "--consumer"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            rig.wait(lambda: _slot_reported(rig), 60, "the Celery worker starting")
            celery_values = measure(rig, args.samples)
        finally:
            process.terminate()
            process.wait(30)
            rig.close()
    report(local_values, celery_values)


def _slot_reported(rig: Rig) -> bool:
    from server.db import new_session
    from server.models import WorkerSlot

    with new_session(rig.app) as db:
        return db.query(WorkerSlot).filter(WorkerSlot.name.like("latency-%")).count() > 0


def report(local_values: list[float], celery_values: list[float]) -> None:
    local_median, celery_median = statistics.median(local_values), statistics.median(celery_values)
    print(f"submit -> start, median of {len(local_values)} (ms): local {local_median * 1000:.1f}")
    print(f"submit -> start, median of {len(celery_values)} (ms): celery {celery_median * 1000:.1f}")
    print(f"Celery adds {1000 * (celery_median - local_median):.1f} ms (median), {celery_median / local_median:.1f}x")
    worst = f"local {max(local_values) * 1000:.1f} ms, celery {max(celery_values) * 1000:.1f} ms"
    print(f"max: {worst}; {os.cpu_count()} CPUs shared with everything else on this machine")


if __name__ == "__main__":
    main()
