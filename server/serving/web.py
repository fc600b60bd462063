"""The web workers: what they load before forking, and the gunicorn settings that drop root."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from pathlib import Path

from flask import Flask

from server.serving.slots import SlotSupervisor
from server.serving.users import WebUser

log = logging.getLogger("gunicorn.error")  # configured by gunicorn by the time the workers speak


WEB_MODULES = ("zipfile", "zlib", "PIL.Image", "PIL.PngImagePlugin", "grader.data.layout", "grader.starter_kit")


def preload(app: Flask) -> None:
    """Load everything the web workers use before they fork, in case a file turns unreadable to the web user."""
    from server.catalog import catalog

    for module in pkgutil.walk_packages([str(Path(__file__).resolve().parent.parent)], "server."):
        if not module.name.startswith("server.migrations"):
            importlib.import_module(module.name)
    for name in WEB_MODULES:
        importlib.import_module(name)
    with app.app_context():
        catalog(app)
        for name in app.jinja_env.list_templates():
            app.jinja_env.get_template(name)


def gunicorn_settings(app: Flask, user: WebUser, slots: int, gpus: tuple[int, ...] = ()) -> dict:
    """gunicorn settings for a root serve: workers switch to ``user``; ``slots`` slots (on ``gpus``) run as root."""
    supervisor = SlotSupervisor(slots, gpus=gpus) if slots > 0 else None

    def post_fork(_server, _worker) -> None:
        os.setgroups([])  # gunicorn's switch (setgid, setuid) would keep root's supplementary groups

    def post_worker_init(_worker) -> None:
        if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) or 0 in os.getgroups():
            log.critical("the web worker still has root's uid or a root group; refusing to serve")
            os._exit(3)  # gunicorn's WORKER_BOOT_ERROR: the whole server stops
        app.extensions["db_engine"].dispose(close=False)
        from server.executor_runtime import ensure_dispatcher

        ensure_dispatcher(app)  # Celery: republish what a restart left queued without waiting for a request

    def when_ready(_server) -> None:
        if supervisor is not None:
            supervisor.start()

    def on_exit(_server) -> None:
        if supervisor is not None:
            supervisor.stop()

    return {
        "user": user.uid,
        "group": user.gid,
        "initgroups": False,  # gunicorn's initgroups path skips setgid: keep it off, post_fork clears the groups
        "preload_app": True,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "when_ready": when_ready,
        "on_exit": on_exit,
    }
