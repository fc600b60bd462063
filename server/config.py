"""Configuration defaults; overridden by WORKSHOP_* environment variables, then by a test dict."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def defaults(instance_path: str) -> dict:
    instance = Path(instance_path)
    return {
        "DATABASE_URL": f"sqlite:///{default_database(instance)}",
        "DATA_DIR": str(instance / "data"),
        "EXERCISES_DIR": str(PROJECT_ROOT / "exercises"),
        "WORK_DIR": str(instance / "jobs"),
        "EXECUTOR": "local",
        "SANDBOX": "bwrap",
        "DOCKER_IMAGE": "workshop-server:latest",
        "KERAS_HOME": str(instance / "keras"),
        "SLOTS": 1,
        "MAX_OPEN_SUBMISSIONS": 1,  # queued or running per participant (fair turns: one job each in the queue)
        "PUBLIC_URL": "",  # the join URL shown on the projector (e.g. a short link); default: the address used
        # the projector's pushed updates (server/projector_feed.py)
        "PROJECTOR_POLL_SECONDS": 0.5,  # how often a stream looks for a changed board
        "PROJECTOR_STREAM_SECONDS": 3600,  # a stream ends after this (the browser reconnects); 0: one snapshot
        "PROJECTOR_CACHE_SECONDS": 0.4,  # streams and polling pages share one snapshot this long
        "PROJECTOR_MAX_STREAMS": 8,  # participants' open streams; past it their page polls (the instructor never waits)
        # the submission page's pushed updates (server/live_feed.py)
        "SUBMISSION_POLL_SECONDS": 0.25,  # how often a stream reads its submission's row
        "SUBMISSION_STREAM_SECONDS": 600,  # a stream ends after this (the browser reconnects); 0: one round of events
        "SUBMISSION_MAX_STREAMS": 12,  # open live pages at once; past it the page polls the submission's JSON
        "EVENT_TITLE": "Deep learning for skin-lesion images",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Failed logins (server/throttle.py): the limits count wrong passwords per round of LOGIN_WINDOW_SECONDS;
        # past one the key is locked for LOGIN_LOCK_SECONDS, twice as long each next time up to the maximum.
        "LOGIN_NAME_LIMIT": 5,  # per display name: guessing one participant's password
        "LOGIN_ADDRESS_LIMIT": 1000,  # per address, all passwords: a flood guard a room of 200 behind NAT never hits
        "LOGIN_INSTRUCTOR_LIMIT": 10,  # instructor password, per address
        "LOGIN_INSTRUCTOR_GLOBAL_LIMIT": 50,  # instructor password, from all addresses together
        "LOGIN_TOKEN_LIMIT": 1000,  # wrong notebook tokens per address (a valid token always works)
        "LOGIN_WINDOW_SECONDS": 600,
        "LOGIN_LOCK_SECONDS": 60,
        "LOGIN_LOCK_MAX_SECONDS": 900,
        "LOGIN_FORGET_SECONDS": 3600,  # after an hour without attempts, locks start short again
        "TRUSTED_PROXIES": 0,  # reverse proxies in front of the app whose X-Forwarded-* headers count
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,
        "LEASE_SECONDS": 60,
        # warm slots: a worker slot's next sandbox is started ahead, TensorFlow imported (bwrap only; 0 turns off)
        "WARM_SLOTS": True,
        "WARM_MAX_SECONDS": 600,  # a warm sandbox that waited longer is replaced by a fresh one
        "SLOTS_PER_GPU": 1,  # --slots-per-gpu: jobs sharing one GPU, each with a share of its memory
        "SANDBOX_RECHECK_SECONDS": 600,  # each idle worker slot checks its sandbox again this often; failing: paused
        "START_EXECUTOR": False,
        # the Celery executor (WORKSHOP_EXECUTOR=celery: server/celery_app.py), remote workers (server/remote_store.py)
        "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",  # RabbitMQ; redis://... also works (visibility below)
        "CELERY_QUEUE": "workshop-jobs",
        "CELERY_VISIBILITY_SECONDS": 6 * 3600,  # Redis only: longer than any job, or a running ticket is redelivered
        "DISPATCH_SECONDS": 5.0,  # how often the server requeues expired leases and republishes missing tickets
        "SERVER_URL": "",  # a remote worker's server (workshop worker --server); empty: the worker uses the database
        "WORKER_TOKEN": "",  # a remote worker's token (workshop worker --token; workshop worker-token create)
        "WEB_USER": "workshop-web",  # who gunicorn's web workers run as when `workshop serve` starts as root
    }


def default_database(instance: Path) -> Path:
    """instance/db/workshop.db: a folder of its own, which the web user may write in (SQLite's journal).

    An instance made before that keeps instance/workshop.db (a link into db/ once `workshop serve` ran as root).
    """
    legacy = instance / "workshop.db"
    return legacy if os.path.lexists(legacy) else instance / "db" / "workshop.db"


def load_secret_key(instance_path: str) -> str:
    """A random key kept in the instance folder (0600), so there is never a default secret key."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
