"""Grading from the command line: `workshop grade`, `exercises list/check`, `sandbox check`, `prepare-weights`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from server.datasets import active_dataset_or_default


@click.command("grade")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--exercise", "slug", required=True, help="Exercise slug (see `workshop exercises list`).")
@click.option("--dataset", default=None, help="Data set name (default: the event's active one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--time-limit", type=float, default=None, help="Override the exercise's time limit (seconds).")
@with_appcontext
def grade_command(file: Path, slug: str, dataset: str | None, as_json: bool, time_limit: float | None) -> None:
    """Grade one file through the sandbox and scoring, exactly as a worker would."""
    from grader.data import dataset_paths
    from grader.grading import grade
    from grader.sandbox.locks import SlotLock
    from server.catalog import catalog
    from server.grading_settings import grading_settings

    app = current_app
    exercise = catalog().get(slug)
    if exercise is None:
        raise click.BadParameter(f"unknown exercise {slug!r}; known: {', '.join(catalog())}", param_hint="--exercise")
    name = dataset or active_dataset_or_default(app)
    with SlotLock() as uid:
        result = grade(
            file.read_bytes().decode("utf-8", errors="replace"),
            exercise,
            dataset_paths(app.config["DATA_DIR"], name),
            grading_settings(app),
            time_limit=time_limit,
            uid=uid,
        )
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_result(result, exercise.metric_label)


def _print_result(result, metric_label: str) -> None:
    click.echo(result.log[-4000:])
    click.echo("-" * 60)
    for epoch in result.history:
        metrics = ", ".join(f"{key} {value:.4f}" for key, value in epoch["metrics"].items())
        click.echo(f"epoch {epoch['epoch']}: {metrics}")
    if result.status == "done":
        scores = f"public {metric_label} {result.public_score}, private {result.private_score}"
        click.echo(f"done in {result.seconds:.1f} s: {scores}")
    else:
        click.echo(f"failed ({result.error_kind}) after {result.seconds:.1f} s: {result.message}")
        if result.traceback:
            click.echo(result.traceback)
    for note in result.notes:
        click.echo(f"note: {note}")


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
    from grader.data import dataset_paths
    from grader.sandbox.locks import SlotLock
    from server.catalog import catalog
    from server.grading_settings import grading_settings

    app = current_app
    exercises = catalog()
    unknown = [slug for slug in slugs if slug not in exercises]
    if unknown:
        raise click.BadParameter(f"unknown exercise(s) {', '.join(unknown)}; known: {', '.join(exercises)}")
    chosen = [exercises[slug] for slug in slugs] if slugs else list(exercises.values())
    if not as_json:
        click.echo(TABLE_HEADER)
    with SlotLock() as uid:
        results = check_curriculum(
            chosen,
            dataset_paths(app.config["DATA_DIR"], dataset or active_dataset_or_default(app)),
            grading_settings(app),
            starters=starters,
            on_result=None if as_json else lambda result: click.echo(format_row(result)),
            uid=uid,
        )
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
    from server.catalog import catalog
    from server.grading_settings import grading_settings

    app = current_app
    models_dir = grading_settings(app).weights_dir
    files = catalog_weights(catalog().values())
    if not files:
        click.echo("No exercise allows pretrained weights; nothing to do.")
        return
    if stand_in:
        images = _calibration_images(app, dataset or active_dataset_or_default(app))
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
    from grader.data import dataset_paths, load_images

    path = dataset_paths(app.config["DATA_DIR"], name).images("train")
    return load_images(path)[:64] if path.is_file() else None


@click.group("sandbox")
def sandbox_group() -> None:
    """The sandbox that runs participants' code."""


@sandbox_group.command("check")
@click.option("--backend", default=None, help="Sandbox to check (default: WORKSHOP_SANDBOX).")
@with_appcontext
def sandbox_check_command(backend: str | None) -> None:
    """Run probes inside the sandbox on this host and print what holds; exit 1 when anything fails.

    Then each GPU nvidia-smi lists: its name, memory and driver, and a probe job on it that must see exactly its
    own GPU (only its /dev/nvidiaN, and the CUDA driver counting one device)."""
    from grader.sandbox.check import format_table
    from server.executor_runtime import check_isolation

    rows, _table = check_isolation(current_app, backend)
    isolated = all(row.ok for row in rows)
    gpu_rows = _gpu_rows(current_app, backend, probe=isolated)
    click.echo(format_table(rows + gpu_rows))
    if not isolated:
        click.echo("The sandbox is NOT safe on this host; workers refuse to start.", err=True)
        sys.exit(1)
    if not all(row.ok for row in gpu_rows):
        click.echo("A GPU check fails: jobs on that GPU would not run as they should.", err=True)
        sys.exit(1)


def _gpu_rows(app: Flask, backend: str | None, probe: bool) -> list:
    """The GPU rows of `sandbox check`: one listing row per GPU and, when ``probe``, its probe job's rows."""
    import shutil

    from grader.sandbox.check import CheckRow, run_gpu_checks
    from grader.sandbox.gpus import GpuError, list_gpus
    from grader.sandbox.locks import SlotLock
    from server.grading_settings import grading_settings

    try:
        gpus = list_gpus()
    except GpuError as error:
        return [CheckRow("GPUs (nvidia-smi)", False, str(error))]
    if not gpus:
        why = "nvidia-smi lists none" if shutil.which("nvidia-smi") else "nvidia-smi is not installed"
        return [CheckRow("GPUs", True, f"none ({why}): jobs run on the CPU")]
    if not probe:
        return [CheckRow(f"GPU {gpu.index}", True, f"{gpu.summary()}; not probed (the sandbox fails)") for gpu in gpus]
    settings = grading_settings(app, backend)
    options = dict(settings.sandbox_options)
    with SlotLock() as uid:
        return run_gpu_checks(settings.sandbox, gpus, uid=uid, work_dir=settings.work_dir, options=options)
