"""``workshop init``: create or upgrade the database and set the event's passwords."""

from __future__ import annotations

import os
import secrets

import click
from flask import current_app
from flask.cli import with_appcontext

from server.db import new_session, upgrade_database
from server.models import EventSettings
from server.passwords import hash_password

PASSWORDS = (
    ("event password", "WORKSHOP_EVENT_PASSWORD", "event_password_hash"),
    ("instructor password", "WORKSHOP_INSTRUCTOR_PASSWORD", "instructor_password_hash"),
)


def safe_url(url: str) -> str:
    """The database URL with its password hidden (the output of init ends up in logs)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot read is printed as the engine will refuse it
        return url.split("@")[-1]


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
        for label, variable, attribute in PASSWORDS:
            missing = getattr(settings, attribute) is None
            password, generated = _password_from_env(variable, generate=missing or new_passwords)
            if password is None:
                kept.append(label)
                continue
            setattr(settings, attribute, hash_password(password))
            printed.append(f"  {label}: {password}" if generated else f"  {label}: set from {variable}")
        db.commit()
    click.echo(f"Database ready at {safe_url(app.config['DATABASE_URL'])}")
    if printed:
        click.echo("Passwords (shown once; only their hashes are stored):")
        click.echo("\n".join(printed))
    if kept and (demo or printed):
        click.echo(
            f"Kept the {' and the '.join(kept)} set earlier. Lost it? `workshop init --new-passwords` prints new ones."
        )
