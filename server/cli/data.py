"""``workshop data``: make, import, activate and describe the data sets submissions are graded on."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.datasets import activate_dataset, active_dataset_or_default
from server.db import new_session
from server.errors import WorkshopError


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

    from grader.data import dataset_paths
    from grader.data.synth import generate_synthetic

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
    from grader.data import DatasetError, dataset_paths
    from grader.data.isic import import_isic

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
    from grader.data import DatasetError

    with new_session(current_app) as db:
        try:
            activate_dataset(db, current_app.config["DATA_DIR"], name)
        except (DatasetError, WorkshopError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"New submissions are now graded on data set {name!r}.")


@data_group.command("info")
@click.argument("name", required=False)
@with_appcontext
def info_command(name: str | None) -> None:
    """List the data sets, or describe one."""
    from grader.data import DatasetError, check_dataset, dataset_paths, list_datasets

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
    from grader.data import DatasetError, dataset_paths, read_manifest

    active = active_dataset_or_default(current_app)
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
