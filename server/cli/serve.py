"""``workshop serve`` (web server and the local worker slots) and ``workshop worker`` (only worker slots).

How serve drops privileges and supervises the slots' process lives in server/serving/.
"""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

GPUS_HELP = (
    "GPUs that get a worker slot each: all (the default where nvidia-smi lists GPUs), none (CPU slots, see "
    "--slots), or indices such as 0,2."
)


def gpu_slots(gpus: str | None, slots: int | None, say, slots_per_gpu: int = 1) -> tuple[int | None, tuple[int, ...]]:
    """(CPU slots, GPU indices) for ``--gpus`` and ``--slots``: one slot per chosen GPU, else ``slots`` CPU slots.

    Without ``--gpus`` every GPU nvidia-smi lists gets a slot; where it lists none (or is missing) the slots are
    CPU slots as before. Contradicting flags and GPUs this host lacks are usage errors, said in plain words.
    """
    from grader.sandbox.gpus import GpuError, choose_gpus, list_gpus, packed

    try:
        found = list_gpus()
    except GpuError as error:
        if gpus is not None and gpus.strip().lower() != "none":
            raise click.ClickException(str(error)) from None
        if gpus is None:
            say(f"No GPU slots: {error}")
        found = []
    if gpus is None and found and slots is not None:
        raise click.UsageError(
            f"this host has {len(found)} GPU(s) ({', '.join(str(gpu.index) for gpu in found)}): without --gpus the "
            f"worker slots are one per GPU; for {slots} CPU slot(s) say --gpus none --slots {slots}"
        )
    try:
        chosen = choose_gpus(gpus, found)
    except GpuError as error:
        raise click.BadParameter(str(error), param_hint="--gpus") from None
    if not chosen:
        return slots, ()
    if slots is not None:
        raise click.UsageError("--slots is for CPU slots: with --gpus each chosen GPU gets one slot")
    try:
        indices = packed([gpu.index for gpu in chosen], slots_per_gpu)
    except GpuError as error:
        raise click.BadParameter(str(error), param_hint="--slots-per-gpu") from None
    each = "one per GPU" if slots_per_gpu == 1 else f"{slots_per_gpu} per GPU, each with its share of its memory"
    say(f"{len(indices)} worker slot(s), {each}: " + "; ".join(gpu.describe() for gpu in chosen))
    return None, indices


SLOTS_PER_GPU_HELP = (
    "Jobs that share one GPU at once (default WORKSHOP_SLOTS_PER_GPU or 1), each capped at the exercise's "
    "gpu_memory_mb or the GPU's memory divided by this."
)


def share_gpus(app: Flask, slots_per_gpu: int | None) -> int:
    """--slots-per-gpu (else WORKSHOP_SLOTS_PER_GPU), kept in the config and the environment: the slots'
    process of a root serve and the grading settings read it from there."""
    count = int(slots_per_gpu if slots_per_gpu is not None else app.config.get("SLOTS_PER_GPU", 1))
    app.config["SLOTS_PER_GPU"] = count
    os.environ["WORKSHOP_SLOTS_PER_GPU"] = str(count)
    return count


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--slots", default=None, type=int, help="CPU worker slots (default WORKSHOP_SLOTS or 1); 0: web only.")
@click.option("--gpus", default=None, help=GPUS_HELP)
@click.option("--slots-per-gpu", default=None, type=int, help=SLOTS_PER_GPU_HELP)
@click.option("--threads", default=32, show_default=True, type=int, help="Web request threads.")
@with_appcontext
def serve_command(
    host: str, port: int, slots: int | None, gpus: str | None, slots_per_gpu: int | None, threads: int
) -> None:
    """Web server (gunicorn, one process) and the local executor's worker slots (one per GPU where there are GPUs).

    Started as root, the slots run as root in a process of their own and the web workers as the unprivileged
    WORKSHOP_WEB_USER (see server/serving/); otherwise everything runs as you, the slots inside the web process.
    """
    from server import serving

    app = current_app._get_current_object()
    if slots == 0 and gpus is not None and gpus.strip().lower() != "none":
        raise click.UsageError("--slots 0 runs no worker slot: leave out --gpus, or --slots")
    run_slots = app.config["EXECUTOR"] == "local" and (slots is None or slots > 0)
    try:
        web_user = serving.web_user_for(app)
    except serving.ServeError as error:
        raise click.ClickException(str(error)) from None
    gpu_list: tuple[int, ...] = ()
    if run_slots:
        from server.executor_runtime import build_executor

        slots, gpu_list = gpu_slots(gpus, slots, click.echo, share_gpus(app, slots_per_gpu))
        build_executor(app, slots, gpu_list)  # fail now, in the foreground, if the sandbox cannot run here
    if web_user is None:
        settings = {"post_worker_init": _post_worker_init(app, slots, run_slots, gpu_list)}
    else:
        slot_count = (len(gpu_list) or int(slots or app.config["SLOTS"])) if run_slots else 0
        settings = _settings_as_root(app, web_user, slot_count, gpu_list)
    click.echo(f"Serving the workshop on http://{host}:{port} ({app.config['EXECUTOR']} executor)")
    _run_gunicorn(app, f"{host}:{port}", threads, settings)


def _post_worker_init(app: Flask, slots: int | None, run_slots: bool, gpus: tuple[int, ...] = ()):
    """gunicorn's hook that starts the worker slots inside its (single) worker process, after the fork."""

    def post_worker_init(_worker) -> None:
        from server.executor_runtime import ensure_dispatcher

        app.extensions["db_engine"].dispose(close=False)
        ensure_dispatcher(app)  # Celery: republish what a restart left queued without waiting for a request
        if run_slots:
            from server.executor_runtime import start_executor

            start_executor(app, slots, gpus)

    return post_worker_init


def _settings_as_root(app: Flask, web_user, slot_count: int, gpus: tuple[int, ...] = ()) -> dict:
    """Prepare the instance for the web user; gunicorn's settings that drop to it and start the slots' process."""
    from server import serving

    try:
        notes = serving.prepare_instance(app, web_user)
    except serving.ServeError as error:
        raise click.ClickException(str(error)) from None
    serving.preload(app)
    settings = serving.gunicorn_settings(app, web_user, slot_count, gpus)
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
@click.option("--slots", default=None, type=int, help="CPU worker slots (default 1).")
@click.option("--gpus", default=None, help=GPUS_HELP)
@click.option("--server", "server_url", default=None, help="Remote: the server's URL (or WORKSHOP_SERVER_URL).")
@click.option("--token", default=None, help="Remote: a worker token (or WORKSHOP_WORKER_TOKEN; workshop worker-token).")
@click.option("--slots-per-gpu", default=None, type=int, help=SLOTS_PER_GPU_HELP)
@with_appcontext
def worker_command(
    slots: int | None, gpus: str | None, server_url: str | None, token: str | None, slots_per_gpu: int | None
) -> None:
    """Only worker slots, claiming jobs from the database, or with --server and --token from a remote server's
    worker API (no database, labels or secret key here); one per GPU where there are GPUs."""
    from server.executor_runtime import WorkerFailed, run_worker

    app = current_app._get_current_object()
    app.config.update({key: value for key, value in (("SERVER_URL", server_url), ("WORKER_TOKEN", token)) if value})
    slots, gpu_list = gpu_slots(gpus, slots, click.echo, share_gpus(app, slots_per_gpu))
    try:
        run_worker(app, slots or 1, gpu_list, say=click.echo)
    except WorkerFailed as error:  # exit non-zero, so that a supervisor (systemd, compose) restarts the worker
        raise click.ClickException(str(error)) from None
