"""The unprivileged user gunicorn's web workers become, created as a system user when missing."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from flask import Flask


class ServeError(RuntimeError):
    """serve cannot split privileges safely here; the message says what to do."""


@dataclass(frozen=True)
class WebUser:
    name: str
    uid: int
    gid: int


def web_user_for(app: Flask) -> WebUser | None:
    """The user gunicorn's web workers become, or None where nothing changes (serve not started as root)."""
    if os.geteuid() != 0:
        return None
    name = str(app.config.get("WEB_USER") or "workshop-web")
    user = ensure_web_user(name)
    if user.uid == 0:
        print(
            f"WARNING: WORKSHOP_WEB_USER={name} keeps the web app running as root: a flaw in the web app would "
            "then be a root compromise. Unset it to run the web workers as an unprivileged user.",
            file=sys.stderr,
        )
        return None
    return user


def ensure_web_user(name: str) -> WebUser:
    """The named user; created as a system user (own group, no home, no login shell) when missing (root only)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_system_user(name)
    return WebUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    message = ""
    for _attempt in range(20):  # another serve may be creating it, or hold the lock on /etc/passwd
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            message = result.stderr.strip()
        except OSError as error:
            raise ServeError(f"cannot create the web user {name!r}: {error}; create it yourself") from None
        try:
            return pwd.getpwnam(name)
        except KeyError:
            time.sleep(0.25)
    raise ServeError(f"cannot create the web user {name!r} with {' '.join(command)}: {message}")
