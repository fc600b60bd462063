"""``workshop export``: the event's results, with private scores and code, as files."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.db import new_session


@click.command("export")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("workshop-export"), show_default=True
)
@with_appcontext
def export_command(out: Path) -> None:
    """Write participants, submissions (with their code) and leaderboards (with private scores) to a folder."""
    from server.catalog import catalog
    from server.export import export_event

    with new_session(current_app) as db:
        counts = export_event(db, list(catalog()), out)
    click.echo(f"Exported {counts['participants']} participants and {counts['submissions']} submissions to {out}")
