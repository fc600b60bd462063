"""Exactly once under SIGKILL: a job starts on one of two Celery workers, that worker is killed with SIGKILL while
the job trains, its lease expires, the job is requeued (the participant sees why) and must complete exactly once
on the other worker. Repeated ``--trials`` times (20 by default); prints each trial and ``exactly-once k/N``.

Needs root, bubblewrap (the real sandbox) and RabbitMQ on WORKSHOP_BROKER_URL (default 127.0.0.1:5672).
Usage: .venv/bin/python bench/celery_faults.py [--trials 20] [--lease 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from celery_rig import Rig, kill_mid_job  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--lease", type=float, default=6, help="LEASE_SECONDS of the server (short, for the test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="celery-faults-") as root:
        rig = Rig(Path(root), lease_seconds=args.lease)
        results, count = [], 0
        try:
            for trial in range(args.trials):
                while len(rig.workers) < 2:  # the killed worker comes back (as a supervisor would restart it)
                    count += 1
                    rig.start_worker(f"w{count}")
                result = kill_mid_job(rig)
                results.append(result)
                print(f"trial {trial + 1}: {json.dumps(result)}", flush=True)
        finally:
            rig.close()
    good = sum(result["exactly_once"] for result in results)
    recovery = statistics.median(result["seconds_after_kill"] for result in results) if results else 0
    print(f"exactly-once {good}/{len(results)} (SIGKILL mid-job, lease {args.lease:.0f} s)")
    print(f"restart note shown to the participant: {sum(r['restart_note_shown'] for r in results)}/{len(results)}")
    print(f"median time from the kill to the verdict: {recovery:.1f} s (lease expiry, requeue, a full rerun)")


if __name__ == "__main__":
    main()
