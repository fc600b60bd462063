"""``workshop backup``, ``workshop restore`` and ``workshop reset``: keep an event, bring it back, start the next."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.db import new_session
from server.errors import WorkshopError


def _refuse_without_yes(yes: bool, what: str) -> None:
    if not yes:
        raise click.ClickException(f"{what}; run again with --yes to go ahead")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(file: Path) -> None:
    """Write a consistent copy of the database, a manifest and the secret key to FILE (.tar.gz), also while the
    server runs. Data sets and weights are not included (they stay where they are)."""
    from server.backup import backup

    try:
        manifest = backup(current_app, file)
    except WorkshopError as error:
        raise click.ClickException(error.message) from None
    click.echo(
        f"Backed up {manifest['database']} ({manifest['participants']} participants, "
        f"{manifest['submissions']} submissions, data set {manifest['active_dataset']}) to {file}"
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the database: everything since the backup is lost.")
@with_appcontext
def restore_command(file: Path, yes: bool) -> None:
    """Replace this instance's database and secret key with the backup in FILE (stop the server first)."""
    from server.backup import read_backup, restore

    try:
        archive, manifest = read_backup(file)
        archive.close()
        _refuse_without_yes(yes, f"restoring {file} replaces the database with its copy of {manifest['created_at']}")
        manifest = restore(current_app, file)
    except WorkshopError as error:
        raise click.ClickException(error.message) from None
    click.echo(
        f"Restored the backup of {manifest['created_at']} ({manifest['participants']} participants, "
        f"{manifest['submissions']} submissions). Data set in the backup: {manifest['active_dataset']}. "
        "Start the server again (`workshop serve`)."
    )


@click.command("reset")
@click.option("--yes", is_flag=True, help="Delete the participants and their submissions.")
@click.option("--force", is_flag=True, help="Reset even without a backup in the last hour.")
@with_appcontext
def reset_command(yes: bool, force: bool) -> None:
    """Prepare the next event: participants, submissions, quota grants, login throttles, worker slots, exercise
    controls, the announcement and the freeze go; passwords, title, exercises, data sets and weights stay."""
    from server.backup import reset_event

    _refuse_without_yes(yes, "reset deletes every participant and submission")
    with new_session(current_app) as db:
        try:
            counts = reset_event(current_app, db, force=force)
        except WorkshopError as error:
            raise click.ClickException(error.message) from None
    removed = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in counts.items())
    click.echo(f"Reset for the next event: removed {removed}. Passwords, exercises and data sets are kept.")
