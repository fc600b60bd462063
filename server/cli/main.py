"""The ``workshop`` console script: a Flask CLI group whose app has every command registered (``server.cli``)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from server.app import create_app


def _create_app() -> Flask:
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Run and manage a hands-on deep-learning workshop."""
