"""``workshop serve`` (web server and the local worker slots) and ``workshop worker`` (only worker slots).

How serve drops privileges and supervises the slots' process lives in server/serving/.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--slots", default=None, type=int, help="Worker slots in this process (default WORKSHOP_SLOTS or 1).")
@click.option("--threads", default=32, show_default=True, type=int, help="Web request threads.")
@with_appcontext
def serve_command(host: str, port: int, slots: int | None, threads: int) -> None:
    """Web server (gunicorn, one process) and the local executor's worker slots.

    Started as root, the slots run as root in a process of their own and the web workers as the unprivileged
    WORKSHOP_WEB_USER (see server/serving/); otherwise everything runs as you, the slots inside the web process.
    """
    from server import serving

    app = current_app._get_current_object()
    run_slots = app.config["EXECUTOR"] == "local" and (slots is None or slots > 0)
    try:
        web_user = serving.web_user_for(app)
    except serving.ServeError as error:
        raise click.ClickException(str(error)) from None
    if run_slots:
        from server.executor_runtime import build_executor

        build_executor(app, slots)  # fail now, in the foreground, if the sandbox cannot run here
    if web_user is None:
        settings = {"post_worker_init": _post_worker_init(app, slots, run_slots)}
    else:
        settings = _settings_as_root(app, web_user, int(slots or app.config["SLOTS"]) if run_slots else 0)
    click.echo(f"Serving the workshop on http://{host}:{port} ({app.config['EXECUTOR']} executor)")
    _run_gunicorn(app, f"{host}:{port}", threads, settings)


def _post_worker_init(app: Flask, slots: int | None, run_slots: bool):
    """gunicorn's hook that starts the worker slots inside its (single) worker process, after the fork."""

    def post_worker_init(_worker) -> None:
        app.extensions["db_engine"].dispose(close=False)
        if run_slots:
            from server.executor_runtime import start_executor

            start_executor(app, slots)

    return post_worker_init


def _settings_as_root(app: Flask, web_user, slot_count: int) -> dict:
    """Prepare the instance for the web user; gunicorn's settings that drop to it and start the slots' process."""
    from server import serving

    try:
        notes = serving.prepare_instance(app, web_user)
    except serving.ServeError as error:
        raise click.ClickException(str(error)) from None
    serving.preload(app)
    settings = serving.gunicorn_settings(app, web_user, slot_count)
    for note in notes:
        click.echo(f"Permissions: {note}")
    click.echo(
        f"Web workers run as {web_user.name} (uid {web_user.uid}); "
        + (f"{slot_count} worker slot(s) as root in a process of their own." if slot_count else "no worker slots.")
    )
    return settings


def _run_gunicorn(app: Flask, bind: str, threads: int, settings: dict) -> None:
    """One gunicorn worker process with ``threads`` request threads, serving ``app`` until stopped."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")
            self.cfg.set("control_socket_disable", True)  # no gunicornc socket in $HOME shared by every serve
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    Server().run()


@click.command("worker")
@click.option("--slots", default=1, show_default=True, type=int)
@click.option("--gpus", default="", help="Comma-separated GPU indices, one slot each (e.g. 0,1); overrides --slots.")
@with_appcontext
def worker_command(slots: int, gpus: str) -> None:
    """Only worker slots, claiming jobs from the database (start as many as the machine can take)."""
    from server.executor_runtime import WorkerFailed, run_worker

    try:
        gpu_list = tuple(int(part) for part in gpus.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give GPU indices such as 0,1", param_hint="--gpus") from None
    try:
        run_worker(current_app._get_current_object(), slots, gpu_list, say=click.echo)
    except WorkerFailed as error:  # exit non-zero, so that a supervisor (systemd, compose) restarts the worker
        raise click.ClickException(str(error)) from None
