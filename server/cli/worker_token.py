"""``workshop worker-token``: make, list and revoke the tokens remote workers use (server/worker_tokens.py)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from server.cli.event import _run


@click.group("worker-token")
def worker_token_group() -> None:
    """Tokens for remote workers (`workshop worker --server URL --token TOKEN`): create, list, revoke."""


@worker_token_group.command("create")
@click.argument("name")
@with_appcontext
def create_command(name: str) -> None:
    """Make a token for the worker NAME; it is printed once, alone on the last line, and stored only hashed."""
    from server.worker_tokens import create_token

    token = _run(lambda db: create_token(db, name))
    click.echo(f"Worker token for {name} (shown only now; `workshop worker-token revoke {name}` ends it):")
    click.echo(token)


@worker_token_group.command("list")
@with_appcontext
def list_command() -> None:
    """Every worker token: name, made, last used, revoked."""
    from server.worker_tokens import list_tokens

    rows = _run(list_tokens)
    for row in rows:
        used = f"{row.last_used_at:%Y-%m-%d %H:%M} UTC" if row.last_used_at else "never"
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M} UTC" if row.revoked_at else "active"
        click.echo(f"{row.name}  made {row.created_at:%Y-%m-%d %H:%M} UTC  last used {used}  {state}")
    click.echo(f"{len(rows)} worker token(s)")


@worker_token_group.command("revoke")
@click.argument("name")
@with_appcontext
def revoke_command(name: str) -> None:
    """Revoke the token of worker NAME at once (its next request is refused)."""
    from server.worker_tokens import revoke_token

    _run(lambda db: revoke_token(db, name))
    click.echo(f"Revoked the token of {name}.")
