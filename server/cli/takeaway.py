"""``workshop takeaway [NAME] --out DIR``: each participant's takeaway bundle as a zip, for the instructor."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from server.db import new_session


@click.command("takeaway")
@click.argument("name", required=False)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("workshop-takeaway"), show_default=True
)
@with_appcontext
def takeaway_command(name: str | None, out: Path) -> None:
    """Write one zip per participant (or only NAME's) to a folder: their code, scores, curves and starter kits."""
    from server.models import Participant
    from server.passwords import name_key
    from server.takeaway import bundle_name, starter_kits, takeaway_for

    with new_session(current_app) as db:
        query = select(Participant).order_by(Participant.id)
        if name is not None:
            query = query.where(Participant.name_key == name_key(name))
        participants = list(db.scalars(query))
        if name is not None and not participants:
            raise click.ClickException(f"there is no participant called {name!r}")
        out.mkdir(parents=True, exist_ok=True)
        starter_kits(current_app, db)  # every kit built once, before the first bundle
        total = 0
        for participant in participants:
            path = out / f"{bundle_name(participant)}.zip"
            path.write_bytes(takeaway_for(current_app, db, participant))
            total += path.stat().st_size
            click.echo(f"{participant.display_name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    click.echo(f"Wrote {len(participants)} takeaway bundles ({total / 1e6:.1f} MB) to {out}")
