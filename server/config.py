"""Configuration defaults; overridden by WORKSHOP_* environment variables, then by a test dict."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def defaults(instance_path: str) -> dict:
    instance = Path(instance_path)
    return {
        "DATABASE_URL": f"sqlite:///{instance / 'workshop.db'}",
        "DATA_DIR": str(instance / "data"),
        "EXERCISES_DIR": str(PROJECT_ROOT / "exercises"),
        "WORK_DIR": str(instance / "jobs"),
        "EXECUTOR": "local",
        "SANDBOX": "bwrap",
        "DOCKER_IMAGE": "workshop-server:latest",
        "BROKER_URL": "redis://127.0.0.1:6379/0",
        "KERAS_HOME": str(instance / "keras"),
        "SLOTS": 1,
        "EVENT_TITLE": "Deep learning for skin-lesion images",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "LOGIN_FAILURE_LIMIT": 20,
        "LOGIN_FAILURE_WINDOW_SECONDS": 600,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "WTF_CSRF_TIME_LIMIT": None,
        "LEASE_SECONDS": 60,
        "START_EXECUTOR": False,
    }


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
