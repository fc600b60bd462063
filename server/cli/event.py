"""``workshop event`` and ``workshop quota``: run the event over ssh, with the same code as the instructor's page."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from server.db import new_session
from server.errors import WorkshopError


def _exercises(slugs: tuple[str, ...]) -> list:
    from server.catalog import catalog

    exercises = catalog(current_app)
    unknown = [slug for slug in slugs if slug not in exercises]
    if unknown:
        known = ", ".join(exercises)
        raise click.ClickException(f"no exercise called {', '.join(map(repr, unknown))}; the exercises: {known}")
    return [exercises[slug] for slug in slugs] if slugs else list(exercises.values())


def _run(action):
    """Run ``action(db)`` in a session; a WorkshopError becomes the command's error message."""
    with new_session(current_app) as db:
        try:
            return action(db)
        except WorkshopError as error:
            raise click.ClickException(error.message) from None
        except SQLAlchemyError as error:
            message = f"the database is not ready ({type(error).__name__}): run `workshop init`"
            raise click.ClickException(message) from None


@click.group("event")
def event_group() -> None:
    """Open, close, deadlines, freeze, reveal, announcements."""


@event_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_appcontext
def status_command(as_json: bool) -> None:
    """How the event stands: each exercise's state, the freeze, the announcement, the queue."""
    from server.event_status import event_status, format_status

    status = _run(lambda db: event_status(db, _exercises(())))
    click.echo(json.dumps(status, indent=2) if as_json else format_status(status))


@event_group.command("open")
@click.argument("slugs", nargs=-1)
@with_appcontext
def open_command(slugs: tuple[str, ...]) -> None:
    """Accept submissions to SLUG... (default: every exercise)."""
    _set_open(slugs, True)


@event_group.command("close")
@click.argument("slugs", nargs=-1)
@with_appcontext
def close_command(slugs: tuple[str, ...]) -> None:
    """Refuse new submissions to SLUG... (default: every exercise); queued jobs still run."""
    _set_open(slugs, False)


def _set_open(slugs: tuple[str, ...], open_: bool) -> None:
    from server.event import set_open

    chosen = _exercises(slugs)
    _run(lambda db: set_open(db, chosen, open_))
    click.echo(f"{'Open' if open_ else 'Closed'}: {', '.join(exercise.slug for exercise in chosen)}")


@event_group.command("deadline")
@click.argument("slug")
@click.argument("when", required=False)
@click.option("--clear", is_flag=True, help="Remove the deadline.")
@with_appcontext
def deadline_command(slug: str, when: str | None, clear: bool) -> None:
    """Refuse submissions to SLUG from WHEN on: +30m, 15:30 (today, server time) or 2026-12-02T15:30Z."""
    from server.event import parse_when, set_deadline

    if clear == (when is not None):
        raise click.UsageError("give either a time or --clear")
    exercise = _exercises((slug,))[0]
    moment = None if clear else _run(lambda db: parse_when(when))
    _run(lambda db: set_deadline(db, exercise, moment))
    click.echo(f"{slug}: no deadline" if moment is None else f"{slug}: deadline {moment.isoformat()}Z")


@event_group.command("freeze")
@click.option("--at", "when", help="Freeze at this time instead of now (+30m, 15:30, ISO 8601).")
@with_appcontext
def freeze_command(when: str | None) -> None:
    """Freeze the public board: it shows everyone as they stood at the freeze."""
    from server.event import freeze, parse_when

    moment = _run(lambda db: freeze(db, parse_when(when) if when else None))
    click.echo(f"The board freezes at {moment.isoformat(timespec='seconds')}Z.")


@event_group.command("unfreeze")
@with_appcontext
def unfreeze_command() -> None:
    """Show everything on the public board again, at once."""
    from server.event import unfreeze

    _run(unfreeze)
    click.echo("The board is live again.")


@event_group.command("reveal")
@click.argument("slug")
@with_appcontext
def reveal_command(slug: str) -> None:
    """Make SLUG's private board public (final selections ranked by private score)."""
    from server.event import reveal

    exercise = _exercises((slug,))[0]
    _run(lambda db: reveal(db, exercise))
    click.echo(f"{slug}: the private board is public.")


@event_group.command("hide")
@click.argument("slug")
@with_appcontext
def hide_command(slug: str) -> None:
    """Undo a reveal: SLUG's private figures are the instructor's alone again."""
    from server.event import hide

    exercise = _exercises((slug,))[0]
    _run(lambda db: hide(db, exercise))
    click.echo(f"{slug}: the private board is hidden again.")


@event_group.command("announce")
@click.argument("text", required=False)
@click.option("--clear", is_flag=True, help="Remove the announcement.")
@with_appcontext
def announce_command(text: str | None, clear: bool) -> None:
    """Show TEXT as a banner on every page (plain text, at most 500 characters)."""
    from server.event import announce

    if clear == (text is not None):
        raise click.UsageError("give either a text or --clear")
    shown = _run(lambda db: announce(db, None if clear else text))
    click.echo(f"Announcement: {shown}" if shown else "No announcement.")


@click.group("quota")
def quota_group() -> None:
    """Submission quotas per exercise and extra submissions for one participant."""


@quota_group.command("set")
@click.argument("slug")
@click.argument("count")
@click.option("--per", "per", help="The rolling window: 90s, 30m, 1h, 1h30m.")
@with_appcontext
def quota_set_command(slug: str, count: str, per: str | None) -> None:
    """At most COUNT submissions per participant per window to SLUG; COUNT `none`: no limit, `default`:
    exercise.toml's quota again."""
    from grader.exercises import Quota, parse_duration
    from server.event import set_quota

    exercise = _exercises((slug,))[0]
    if count in ("none", "default"):
        _run(lambda db: set_quota(db, exercise, None, back_to_default=count == "default"))
        click.echo(f"{slug}: {'the exercise.toml quota' if count == 'default' else 'no quota'}")
        return
    if not count.isdigit():
        raise click.BadParameter(f"{count!r}: give a whole number, `none` or `default`", param_hint="COUNT")
    if per is None:
        raise click.UsageError("give the window with --per, e.g. --per 1h")
    try:
        quota = Quota.parse({"count": int(count), "per": parse_duration(per)})
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    _run(lambda db: set_quota(db, exercise, quota))
    click.echo(f"{slug}: at most {quota.count} submissions per {quota.per_seconds} s")


@quota_group.command("grant")
@click.argument("name")
@click.argument("slug")
@click.argument("extra", type=click.IntRange(0, 1000))
@with_appcontext
def quota_grant_command(name: str, slug: str, extra: int) -> None:
    """Give participant NAME EXTRA more submissions to SLUG per window (0 takes a grant back)."""
    from server.event import grant_quota

    exercise = _exercises((slug,))[0]
    participant = _run(lambda db: grant_quota(db, name, exercise, extra))
    click.echo(f"{participant.display_name}: {extra} extra submission(s) to {slug} per window")
