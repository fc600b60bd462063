"""A Celery rig on loopback for bench/celery_faults.py, bench/celery_latency.py and the faults test: the server
(this process, a thread, SQLite, the real RabbitMQ on WORKSHOP_BROKER_URL) and remote workers as real
``workshop worker`` processes that hold only a worker token and their own instance folder.

Not a benchmark itself. Talks only to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.data import dataset_paths  # noqa: E402
from grader.data.synth import generate_synthetic  # noqa: E402
from server import create_app, job_store  # noqa: E402
from server.celery_app import Dispatcher, start_dispatcher  # noqa: E402
from server.db import new_session, upgrade_database  # noqa: E402
from server.models import EventSettings, Participant, Submission  # noqa: E402
from server.queueing import queue_submission  # noqa: E402
from server.worker_tokens import create_token  # noqa: E402

BROKER = os.environ.get("WORKSHOP_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# trains for a few seconds after saying so (the moment a fault test kills its worker), then a one-layer model
SLOW_TRIVIAL = """
import time
import keras


def train(data):
    data.log("training started")
    time.sleep({sleep})
    size = data.image_size
    inputs = keras.Input((size, size, 3))
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, outputs)
"""


class Rig:
    def __init__(self, root: Path, lease_seconds: float = 6, retry_seconds: float = 1, **config):
        self.root = Path(root)
        data_dir = self.root / "data"
        if not (data_dir / "synthetic" / "manifest.json").exists():
            generate_synthetic(dataset_paths(data_dir, "synthetic"), seed=1, train=64, val=24, test=40, size=32)
        self.queue = f"rig-{secrets.token_hex(6)}"
        self.app = create_app(
            {
                "SECRET_KEY": secrets.token_hex(16),
                "DATABASE_URL": f"sqlite:///{self.root / 'server.db'}",
                "DATA_DIR": str(data_dir),
                "WORK_DIR": str(self.root / "server-jobs"),
                "KERAS_HOME": str(self.root / "keras"),
                "EXECUTOR": "celery",
                "BROKER_URL": BROKER,
                "CELERY_QUEUE": self.queue,
                "DISPATCH_SECONDS": 0.5,
                "LEASE_SECONDS": lease_seconds,
                **config,
            }
        )
        self.recorded: dict[int, int] = {}  # verdicts the server accepted from uploads, per submission
        self.app.after_request(self._count_recorded)
        job_store.RETRY_BASE_SECONDS = retry_seconds  # a requeued job waits this long (10 s in production)
        upgrade_database(self.app)
        with new_session(self.app) as db:
            db.add(EventSettings(id=1, title="rig", active_dataset="synthetic"))
            db.commit()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.dispatcher = start_dispatcher(self.app)
        self.workers: dict[str, subprocess.Popen] = {}
        self.people = 0

    def _count_recorded(self, response):
        from flask import request

        match = re.fullmatch(r"/worker-api/v1/jobs/(\d+)/result", request.path)
        if match and response.status_code == 200 and (response.get_json(silent=True) or {}).get("recorded"):
            self.recorded[int(match.group(1))] = self.recorded.get(int(match.group(1)), 0) + 1
        return response

    def worker_env(self, name: str, sandbox: str = "bwrap") -> dict:
        with new_session(self.app) as db:
            token = create_token(db, f"{name}-{secrets.token_hex(3)}")
        env = {key: value for key, value in os.environ.items() if not key.startswith("WORKSHOP_")}
        return env | {
            "WORKSHOP_INSTANCE_PATH": str(self.root / name),
            "WORKSHOP_EXECUTOR": "celery",
            "WORKSHOP_BROKER_URL": BROKER,
            "WORKSHOP_CELERY_QUEUE": self.queue,
            "WORKSHOP_SERVER_URL": self.url,
            "WORKSHOP_WORKER_TOKEN": token,
            "WORKSHOP_SANDBOX": sandbox,
        }

    def start_worker(self, name: str, sandbox: str = "bwrap") -> subprocess.Popen:
        """``workshop worker --slots 1`` as a process of its own, remote (token and URL only)."""
        log = (self.root / f"{name}.log").open("a")
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "worker", "--slots", "1"],
            env=self.worker_env(name, sandbox),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers[name] = process
        return process

    def submit(self, code: str, slug: str = "cnn-from-scratch", notify=None) -> int:
        """Queue a submission for a new participant and tell the executor (the dispatcher, as the submit view does)."""
        from server.catalog import catalog

        self.people += 1
        with new_session(self.app) as db:
            person = Participant(display_name=f"p{self.people}", name_key=f"p{self.people}", password_hash="!")  # noqa: S106
            db.add(person)
            db.commit()
            submission = queue_submission(db, person, catalog(self.app)[slug], code, None)
            submission_id = submission.id
        (notify or self.dispatcher.notify)()
        return submission_id

    def row(self, submission_id: int) -> Submission:
        with new_session(self.app) as db:
            return db.get(Submission, submission_id)

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            time.sleep(0.1)
        raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")

    def pid_running(self, submission_id: int) -> int | None:
        """The pid of the worker process that holds the job (its slot name is host:pid:slot-N)."""
        row = self.row(submission_id)
        match = re.search(r":(\d+):slot-\d+", row.worker or "")
        return int(match.group(1)) if row.status == "running" and match else None

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        for name, process in self.workers.items():
            if process.pid == pid:
                process.wait(10)
                self.workers.pop(name)
                return

    def close(self) -> None:
        for process in self.workers.values():
            process.terminate()
        for process in self.workers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.dispatcher.stop()
        try:
            dispatcher = Dispatcher(self.app)
            with dispatcher.celery.connection_for_write() as connection:
                dispatcher.queue.bind(connection.default_channel).delete()
        finally:
            self.server.shutdown()
            self.app.extensions["db_engine"].dispose()


def kill_mid_job(rig: Rig, sleep: float = 4, timeout: float = 240) -> dict:
    """One fault trial: a job starts on one worker, that worker is SIGKILLed while the job trains; returns what
    happened (the job's final row, who ran it, whether it completed exactly once on another worker)."""
    submission_id = rig.submit(SLOW_TRIVIAL.format(sleep=sleep))
    rig.wait(lambda: "training started" in (rig.row(submission_id).log or ""), timeout, "the job starting to train")
    victim = rig.pid_running(submission_id)
    rig.kill(victim)
    killed_at = time.monotonic()
    seen_notes: set[str] = set()

    def finished():
        row = rig.row(submission_id)
        seen_notes.update(row.notes or [])  # the participant's page shows them while the job waits and reruns
        return row.is_terminal and row

    final = rig.wait(finished, timeout, "the job finishing")
    time.sleep(1.0)  # the verdict is committed inside the upload's request; its count right after it (and any late one)
    return {
        "submission_id": submission_id,
        "status": final.status,
        "error": final.error_message,
        "attempts": final.attempts,
        "restart_note_shown": job_store.RESTART_NOTE in seen_notes,
        "killed_pid": victim,
        "finished_by": final.worker,
        "other_worker": str(victim) not in (final.worker or ""),
        "seconds_after_kill": round(time.monotonic() - killed_at, 1),
        "uploads_recorded": rig.recorded.get(submission_id, 0),
        "exactly_once": final.status == "done"
        and final.attempts == 2
        and str(victim) not in (final.worker or "")
        and rig.recorded.get(submission_id, 0) == 1,
    }
