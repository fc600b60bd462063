"""The ``workshop`` command line: a Flask CLI group, so ``flask --app server ...`` works too."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from server.db import new_session, upgrade_database
from server.models import EventSettings
from server.passwords import hash_password


def _create_app() -> Flask:
    from server import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Run and manage a hands-on deep-learning workshop."""


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli`` so `workshop`, `flask --app server` and test runners all see them."""
    for command in (
        init_command,
        serve_command,
        worker_command,
        grade_command,
        data_group,
        exercises_group,
        prepare_weights_command,
        export_command,
        sandbox_group,
    ):
        app.cli.add_command(command)


def _password_from_env(variable: str, generate: bool) -> tuple[str | None, bool]:
    """The password in ``variable``, else a fresh random one when ``generate``; second value: generated?"""
    value = os.environ.get(variable)
    if value:
        return value, False
    return (secrets.token_urlsafe(9), True) if generate else (None, False)


@click.command("init")
@click.option("--demo", is_flag=True, help="Set passwords from the environment, or generate and print missing ones.")
@click.option("--new-passwords", is_flag=True, help="Generate (and print) new passwords even where some are set.")
@with_appcontext
def init_command(demo: bool, new_passwords: bool) -> None:
    """Create or upgrade the database; set the passwords.

    Passwords come from WORKSHOP_EVENT_PASSWORD / WORKSHOP_INSTRUCTOR_PASSWORD when given; missing ones are
    generated and printed once. A re-run keeps those already set (restarting mid-event must not change
    the password on the slide) unless --new-passwords asks for fresh ones.
    """
    app = current_app
    upgrade_database(app)
    with new_session(app) as db:
        settings = db.get(EventSettings, 1) or EventSettings(id=1, title=app.config["EVENT_TITLE"])
        db.add(settings)
        printed, kept = [], []
        for label, variable, attribute in (
            ("event password", "WORKSHOP_EVENT_PASSWORD", "event_password_hash"),
            ("instructor password", "WORKSHOP_INSTRUCTOR_PASSWORD", "instructor_password_hash"),
        ):
            missing = getattr(settings, attribute) is None
            password, generated = _password_from_env(variable, generate=missing or new_passwords)
            if password is None:
                kept.append(label)
                continue
            setattr(settings, attribute, hash_password(password))
            printed.append(f"  {label}: {password}" if generated else f"  {label}: set from {variable}")
        db.commit()
    click.echo(f"Database ready at {app.config['DATABASE_URL']}")
    if printed:
        click.echo("Passwords (shown once; only their hashes are stored):")
        click.echo("\n".join(printed))
    if kept and (demo or printed):
        click.echo(
            f"Kept the {' and the '.join(kept)} set earlier. Lost it? `workshop init --new-passwords` prints new ones."
        )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--slots", default=None, type=int, help="Worker slots in this process (default WORKSHOP_SLOTS or 1).")
@click.option("--threads", default=32, show_default=True, type=int, help="Web request threads.")
@with_appcontext
def serve_command(host: str, port: int, slots: int | None, threads: int) -> None:
    """Web server (gunicorn, one process) and the local executor's worker slots.

    Started as root, the slots run as root in a process of their own and the web workers as the unprivileged
    WORKSHOP_WEB_USER (see server/serving.py); otherwise everything runs as you, the slots inside the web process.
    """
    from gunicorn.app.base import BaseApplication

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

    def post_worker_init(_worker) -> None:
        """Start the worker slots inside gunicorn's (single) worker process, after the fork."""
        app.extensions["db_engine"].dispose(close=False)
        if run_slots:
            from server.executor_runtime import start_executor

            start_executor(app, slots)

    settings = {"post_worker_init": post_worker_init}
    if web_user is not None:
        try:
            notes = serving.prepare_instance(app, web_user)
        except serving.ServeError as error:
            raise click.ClickException(str(error)) from None
        serving.preload(app)
        slot_count = int(slots or app.config["SLOTS"]) if run_slots else 0
        settings = serving.gunicorn_settings(app, web_user, slot_count)
        for note in notes:
            click.echo(f"Permissions: {note}")
        click.echo(
            f"Web workers run as {web_user.name} (uid {web_user.uid}); "
            + (f"{slot_count} worker slot(s) as root in a process of their own." if slot_count else "no worker slots.")
        )

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")
            self.cfg.set("control_socket_disable", True)  # no gunicornc socket in $HOME shared by every serve
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    click.echo(f"Serving the workshop on http://{host}:{port} ({app.config['EXECUTOR']} executor)")
    Server().run()


@click.command("worker")
@click.option("--slots", default=1, show_default=True, type=int)
@click.option("--gpus", default="", help="Comma-separated GPU indices, one slot each (e.g. 0,1); overrides --slots.")
@with_appcontext
def worker_command(slots: int, gpus: str) -> None:
    """Only worker slots, claiming jobs from the database (start as many as the machine can take)."""
    from server.executor_runtime import start_executor

    try:
        gpu_list = tuple(int(part) for part in gpus.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give GPU indices such as 0,1", param_hint="--gpus") from None
    app: Flask = current_app._get_current_object()
    executor = start_executor(app, slots, gpu_list)
    slots = len(gpu_list) or slots
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Worker running with {slots} slot(s); Ctrl-C stops it.")
    while not stop.wait(1.0):
        if executor.failed.is_set():  # exit non-zero, so that a supervisor (systemd, compose) restarts the worker
            executor.stop(timeout=1)
            raise click.ClickException(f"no worker slot can be kept alive: {executor.failure_reason}")
    executor.stop()


@click.command("grade")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--exercise", "slug", required=True, help="Exercise slug (see `workshop exercises list`).")
@click.option("--dataset", default=None, help="Data set name (default: the event's active one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--time-limit", type=float, default=None, help="Override the exercise's time limit (seconds).")
@with_appcontext
def grade_command(file: Path, slug: str, dataset: str | None, as_json: bool, time_limit: float | None) -> None:
    """Grade one file through the sandbox and scoring, exactly as a worker would."""
    from grader.datasets import dataset_paths
    from grader.executor import SlotLock
    from grader.grading import grade
    from server.jobs import catalog

    app = current_app
    exercise = catalog().get(slug)
    if exercise is None:
        raise click.BadParameter(f"unknown exercise {slug!r}; known: {', '.join(catalog())}", param_hint="--exercise")
    name = dataset or _active_dataset_name(app)
    slot = SlotLock()
    uid = slot.acquire()
    try:
        result = grade(
            file.read_bytes().decode("utf-8", errors="replace"),
            exercise,
            dataset_paths(app.config["DATA_DIR"], name),
            sandbox=app.config["SANDBOX"],
            work_dir=Path(app.config["WORK_DIR"]),
            time_limit=time_limit,
            uid=uid,
            weights_dir=Path(app.config["KERAS_HOME"]) / "models",
        )
    finally:
        slot.release()
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_result(result)


def _active_dataset_name(app: Flask) -> str:
    try:
        with new_session(app) as db:
            settings = db.get(EventSettings, 1)
            return settings.active_dataset if settings else "synthetic"
    except Exception:  # no database yet: grading works without one
        return "synthetic"


def _print_result(result) -> None:
    click.echo(result.log[-4000:])
    click.echo("-" * 60)
    for epoch in result.history:
        metrics = ", ".join(f"{key} {value:.4f}" for key, value in epoch["metrics"].items())
        click.echo(f"epoch {epoch['epoch']}: {metrics}")
    if result.status == "done":
        click.echo(
            f"done in {result.seconds:.1f} s: public ROC AUC {result.public_score}, private {result.private_score}"
        )
    else:
        click.echo(f"failed ({result.error_kind}) after {result.seconds:.1f} s: {result.message}")
        if result.traceback:
            click.echo(result.traceback)
    for note in result.notes:
        click.echo(f"note: {note}")


@click.command("export")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("workshop-export"), show_default=True
)
@with_appcontext
def export_command(out: Path) -> None:
    """Write participants, submissions (with their code) and leaderboards (with private scores) to a folder."""
    from server.export import export_event
    from server.jobs import catalog

    with new_session(current_app) as db:
        counts = export_event(db, list(catalog()), out)
    click.echo(f"Exported {counts['participants']} participants and {counts['submissions']} submissions to {out}")


@click.group("data")
def data_group() -> None:
    """Data sets: synthetic, imported from ISIC, information."""


@data_group.command("synth")
@click.option("--name", default="synthetic", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--train", "n_train", default=1000, show_default=True, type=int)
@click.option("--val", "n_val", default=200, show_default=True, type=int)
@click.option("--test", "n_test", default=400, show_default=True, type=int)
@click.option("--size", default=96, show_default=True, type=int, help="Stored image size in pixels.")
@click.option("--force", is_flag=True, help="Overwrite an existing data set of that name.")
@with_appcontext
def synth_command(name: str, seed: int, n_train: int, n_val: int, n_test: int, size: int, force: bool) -> None:
    """Generate the deterministic synthetic lesion data set (offline demos and tests)."""
    import shutil

    from grader.datasets import dataset_paths
    from grader.synth import generate_synthetic

    paths = dataset_paths(current_app.config["DATA_DIR"], name)
    if paths.manifest.exists() and not force:
        click.echo(f"Data set {name!r} already exists at {paths.root} (use --force to regenerate).")
        return
    if paths.root.exists():
        shutil.rmtree(paths.root)
    try:
        manifest = generate_synthetic(paths, seed=seed, train=n_train, val=n_val, test=n_test, size=size)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(f"Wrote synthetic data set {name!r} to {paths.root}: {json.dumps(manifest['counts'])}")


@data_group.command("import-isic")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", default="auto", show_default=True, help="auto, isic-cli, isic2020 or ham10000.")
@click.option("--name", default="isic", show_default=True, help="Name of the data set to write.")
@click.option("--size", default=224, show_default=True, type=int, help="Stored image size in pixels.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--fractions", default="0.7,0.1,0.2", show_default=True, help="train,val,test fractions.")
@click.option("--public-fraction", default=0.5, show_default=True, type=float, help="Share of test that is public.")
@click.option("--dermoscopic-only", is_flag=True, help="Keep only dermoscopic images (isic-cli exports).")
@click.option("--duplicates", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--workers", type=int, default=None, help="Decoding processes (default: all cores).")
@with_appcontext
def import_isic_command(
    source: Path,
    fmt: str,
    name: str,
    size: int,
    seed: int,
    fractions: str,
    public_fraction: float,
    dermoscopic_only: bool,
    duplicates: Path | None,
    workers: int | None,
) -> None:
    """Import an ISIC export (isic CLI download, ISIC 2020, HAM10000) into leakage-free splits."""
    from grader.datasets import DatasetError, dataset_paths
    from grader.isic_import import import_isic

    try:
        split = tuple(float(part) for part in fractions.split(","))
        if len(split) != 3:
            raise ValueError
    except ValueError:
        raise click.BadParameter("give three numbers such as 0.7,0.1,0.2", param_hint="--fractions") from None
    try:
        manifest = import_isic(
            source,
            dataset_paths(current_app.config["DATA_DIR"], name),
            fmt=fmt,
            size=size,
            seed=seed,
            fractions=split,
            public_fraction=public_fraction,
            dermoscopic_only=dermoscopic_only,
            duplicates_csv=duplicates,
            workers=workers,
        )
    except (DatasetError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Imported {manifest['format']} data set {name!r}: {json.dumps(manifest['counts'])}")
    click.echo(f"Make it the event's data set with: workshop data activate {name}")


@data_group.command("activate")
@click.argument("name")
@with_appcontext
def activate_command(name: str) -> None:
    """Make data set NAME the one new submissions are graded on."""
    from grader.datasets import DatasetError, check_dataset, dataset_paths

    try:
        check_dataset(dataset_paths(current_app.config["DATA_DIR"], name))
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    with new_session(current_app) as db:
        settings = db.get(EventSettings, 1)
        if settings is None:
            raise click.ClickException("the database is not initialised: run `workshop init` first")
        settings.active_dataset = name
        db.commit()
    click.echo(f"New submissions are now graded on data set {name!r}.")


@data_group.command("info")
@click.argument("name", required=False)
@with_appcontext
def info_command(name: str | None) -> None:
    """List the data sets, or describe one."""
    from grader.datasets import DatasetError, check_dataset, dataset_paths, list_datasets

    data_dir = current_app.config["DATA_DIR"]
    if name is None:
        names = list_datasets(data_dir)
        empty = f"No data sets in {data_dir}; run `workshop data synth`."
        click.echo(_dataset_table(data_dir, names) if names else empty)
        return
    try:
        manifest = check_dataset(dataset_paths(data_dir, name))
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    click.echo(json.dumps(manifest, indent=2))


def _dataset_table(data_dir: str, names: list[str]) -> str:
    """One line per data set: its source, image size, images per split with the malignant share, and which is active."""
    from grader.datasets import DatasetError, dataset_paths, read_manifest

    active = None
    try:
        with new_session(current_app) as db:
            settings = db.get(EventSettings, 1)
            active = settings.active_dataset if settings is not None else None
    except SQLAlchemyError:
        pass  # no database yet: nothing is active
    lines = [f"{'name':<16} {'source':<12} {'size':>5}  {'train':>14}  {'val':>14}  {'test':>14}  active"]
    for name in names:
        try:
            manifest = read_manifest(dataset_paths(data_dir, name))
        except (DatasetError, ValueError) as error:
            lines.append(f"{name:<16} unreadable manifest: {error}")
            continue
        splits = []
        for split in ("train", "val", "test"):
            counts = manifest.get("counts", {}).get(split, {})
            total = sum(counts.values())
            share = f"{counts.get('malignant', 0) / total:.0%}" if total else "-"
            splits.append(f"{total:>7} ({share:>4})")
        marker = "yes" if name == active else ""
        source = str(manifest.get("format") or manifest.get("source", "?"))[:12]
        lines.append(f"{name:<16} {source:<12} {manifest.get('size', '?'):>5}  {'  '.join(splits)}  {marker}")
    lines.append("(images per split, the malignant share in brackets; `workshop data info NAME` for the manifest)")
    return "\n".join(lines)


@click.group("exercises")
def exercises_group() -> None:
    """The exercise catalog."""


@exercises_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_command(as_json: bool) -> None:
    """List the exercises."""
    from grader.exercises import ExerciseError, load_catalog

    try:
        exercises = load_catalog(current_app.config["EXERCISES_DIR"]).values()
    except ExerciseError as error:
        click.echo("\n".join(error.problems), err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps([exercise.as_listing() for exercise in exercises]))
        return
    for exercise in exercises:
        click.echo(f"{exercise.slug:30} {exercise.title} ({exercise.image_size} px, {exercise.time_limit} s)")


@exercises_group.command("check")
@click.argument("slugs", nargs=-1)
@click.option("--starters", is_flag=True, help="Also run every starter (it must run to a score).")
@click.option("--dataset", default=None, help="Data set name (default: the event's active one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def exercises_check_command(slugs: tuple[str, ...], starters: bool, dataset: str | None, as_json: bool) -> None:
    """Grade the reference solutions through the sandbox and compare each score with its band; exit 1 on a miss."""
    from grader.curriculum import TABLE_HEADER, check_curriculum, curriculum_ok, format_details, format_row
    from grader.datasets import dataset_paths
    from grader.executor import SlotLock
    from server.jobs import catalog

    app = current_app
    exercises = catalog()
    unknown = [slug for slug in slugs if slug not in exercises]
    if unknown:
        raise click.BadParameter(f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(exercises)}")
    chosen = [exercises[slug] for slug in slugs] if slugs else list(exercises.values())
    if not as_json:
        click.echo(TABLE_HEADER)
    slot = SlotLock()
    uid = slot.acquire()
    try:
        results = check_curriculum(
            chosen,
            dataset_paths(app.config["DATA_DIR"], dataset or _active_dataset_name(app)),
            starters=starters,
            on_result=None if as_json else lambda result: click.echo(format_row(result)),
            sandbox=app.config["SANDBOX"],
            work_dir=Path(app.config["WORK_DIR"]),
            uid=uid,
            weights_dir=Path(app.config["KERAS_HOME"]) / "models",
        )
    finally:
        slot.release()
    ok = curriculum_ok(results)
    if as_json:
        click.echo(json.dumps({"ok": ok, "results": [result.as_dict() for result in results]}, indent=2))
    else:
        click.echo("\n".join([*format_details(results), "curriculum OK" if ok else "curriculum NOT OK"]))
    sys.exit(0 if ok else 1)


@click.command("prepare-weights")
@click.option(
    "--stand-in",
    is_flag=True,
    help="Offline development only: write random-init stand-ins under Keras's names (no ImageNet gain).",
)
@click.option("--dataset", default=None, help="Data set whose training images calibrate the stand-ins.")
@with_appcontext
def prepare_weights_command(stand_in: bool, dataset: str | None) -> None:
    """Download the Keras ImageNet weights every exercise allows into WORKSHOP_KERAS_HOME/models."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no start-up chatter
    from grader.weights import catalog_weights, is_stand_in, make_readable, prepare_weights, write_stand_in
    from server.jobs import catalog

    app = current_app
    models_dir = Path(app.config["KERAS_HOME"]) / "models"
    files = catalog_weights(catalog().values())
    if not files:
        click.echo("No exercise allows pretrained weights; nothing to do.")
        return
    if stand_in:
        images = _calibration_images(app, dataset or _active_dataset_name(app))
        for item in files:
            if (models_dir / item.file_name).is_file() and not is_stand_in(models_dir, item):
                click.echo(f"present   {models_dir / item.file_name} (real weights, kept)")
                continue
            click.echo(f"stand-in  {write_stand_in(item, models_dir, calibration_images=images)}")
        make_readable(models_dir)
        click.echo("These are NOT ImageNet weights: jobs say so, and scores show no gain from pretraining.")
        return
    results = prepare_weights(files, models_dir)
    make_readable(models_dir)
    for result in results:
        facts = f"sha256 {result.sha256}" if result.sha256 else result.error
        click.echo(f"{result.action:10} {result.item.architecture:17} {result.path.name}  {facts}")
    if any(result.action == "failed" for result in results):
        click.echo("Some weights could not be prepared; exercises that use them will fail.", err=True)
        sys.exit(1)
    click.echo(f"Weights ready in {models_dir}")


def _calibration_images(app: Flask, name: str):
    """A few training images of the data set, or None when it does not exist (smooth random images then)."""
    from grader.datasets import dataset_paths, load_images

    path = dataset_paths(app.config["DATA_DIR"], name).images("train")
    return load_images(path)[:64] if path.is_file() else None


@click.group("sandbox")
def sandbox_group() -> None:
    """The sandbox that runs participants' code."""


@sandbox_group.command("check")
@click.option("--backend", default=None, help="Sandbox to check (default: WORKSHOP_SANDBOX).")
@with_appcontext
def sandbox_check_command(backend: str | None) -> None:
    """Run probes inside the sandbox on this host and print what holds; exit 1 when anything fails."""
    from server.executor_runtime import check_isolation

    rows, table = check_isolation(current_app, backend)
    click.echo(table)
    if not all(row.ok for row in rows):
        click.echo("The sandbox is NOT safe on this host; workers refuse to start.", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
