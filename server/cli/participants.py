"""``workshop participants``: list, rename, reset a password, hide, disqualify, restore and delete participants,
with the same functions as the instructor's page (server/participants_admin.py)."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from server.cli.event import _run


@click.group("participants")
def participants_group() -> None:
    """List participants; rename, reset a password, hide, disqualify, restore, delete."""


@participants_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--search", default="", help="Only names containing this text (ignoring case).")
@with_appcontext
def list_command(as_json: bool, search: str) -> None:
    """Everyone: joined, last seen, submissions, best public score per exercise, hidden/disqualified."""
    from server.participants_admin import participant_rows

    rows = _run(lambda db: participant_rows(db, search))
    if as_json:
        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
        return
    for row in rows:
        seen = f"{row.last_seen:%Y-%m-%d %H:%M}" if row.last_seen else "never"
        best = ", ".join(f"{slug} {score:.4f}" for slug, score in row.best.items()) or "no scores"
        flags = ["hidden"] * row.hidden + ([f"disqualified: {row.disqualified_reason}"] * bool(row.disqualified_reason))
        click.echo(
            f"{row.display_name}  joined {row.joined:%Y-%m-%d %H:%M}  last seen {seen}  "
            f"{row.submissions} submissions  {best}" + (f"  [{'; '.join(flags)}]" if flags else "")
        )
    click.echo(f"{len(rows)} participants")


def _act(name: str, action) -> object:
    """Run ``action(db, participant)`` on the participant called ``name``."""
    from server.participants_admin import find_participant

    return _run(lambda db: action(db, find_participant(db, name)))


@participants_group.command("rename")
@click.argument("old")
@click.argument("new")
@with_appcontext
def rename_command(old: str, new: str) -> None:
    """Rename OLD to NEW (the history is kept)."""
    from server.participants_admin import rename

    change = _act(old, lambda db, participant: rename(db, participant, new))
    click.echo(f"Renamed {change.old_name} to {change.new_name}.")


@participants_group.command("reset-password")
@click.argument("name")
@with_appcontext
def reset_password_command(name: str) -> None:
    """Make a one-time code (24 h) with which NAME sets a new password at /reset-password."""
    from server.participants_admin import RESET_CODE_HOURS, new_reset_code

    code = _act(name, new_reset_code)
    click.echo(f"Reset code for {name}: {code}")
    click.echo(f"Shown only now. Valid once, for {RESET_CODE_HOURS} hours, at /reset-password (name + code).")


@participants_group.command("hide")
@click.argument("name")
@with_appcontext
def hide_command(name: str) -> None:
    """Leave NAME off the leaderboards (undo with restore)."""
    from server.participants_admin import hide

    click.echo(_act(name, hide))


@participants_group.command("disqualify")
@click.argument("name")
@click.option("--reason", required=True, help="Why (the participant sees it).")
@with_appcontext
def disqualify_command(name: str, reason: str) -> None:
    """Disqualify NAME: off the leaderboards, with a reason they see (undo with restore)."""
    from server.participants_admin import disqualify

    click.echo(_act(name, lambda db, participant: disqualify(db, participant, reason)))


@participants_group.command("restore")
@click.argument("name")
@with_appcontext
def restore_command(name: str) -> None:
    """Undo hide and disqualify: NAME is back on the leaderboards."""
    from server.participants_admin import restore

    click.echo(_act(name, restore))


@participants_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Really delete (required).")
@with_appcontext
def delete_command(name: str, yes: bool) -> None:
    """Delete NAME with all their submissions, quota grants and name history."""
    from server.participants_admin import delete_participant

    if not yes:
        raise click.ClickException(f"this deletes {name} and all their submissions for good; add --yes to do it")
    click.echo(_act(name, delete_participant))
