"""The ``workshop`` command line: a Flask CLI group, so ``flask --app server ...`` works too.

One module per command group: ``init`` (database and passwords), ``serve`` (web server and worker slots),
``grading`` (grade, exercises, sandbox check, weights), ``data`` (data sets), ``event`` (event and
quota: open, close, deadlines, freeze, reveal, announcements), ``export``, ``backup`` (backup, restore,
reset), ``takeaway`` (each participant's work as a zip), ``participants`` (list, rename, reset-password, hide,
disqualify, restore, delete).
"""

from __future__ import annotations

from flask import Flask

from server.cli.backup import backup_command, reset_command, restore_command
from server.cli.data import data_group
from server.cli.event import event_group, quota_group
from server.cli.export import export_command
from server.cli.grading import (
    exercises_group,
    grade_command,
    prepare_weights_command,
    sandbox_group,
)
from server.cli.init import init_command
from server.cli.participants import participants_group
from server.cli.rescore import rerun_command, rescore_command
from server.cli.serve import serve_command, worker_command
from server.cli.takeaway import takeaway_command
from server.cli.worker_token import worker_token_group


def register_commands(app: Flask) -> None:
    """Attach the commands to ``app.cli`` so `workshop`, `flask --app server` and test runners all see them."""
    for command in (
        init_command,
        serve_command,
        worker_command,
        grade_command,
        data_group,
        exercises_group,
        prepare_weights_command,
        export_command,
        sandbox_group,
        event_group,
        quota_group,
        takeaway_command,
        backup_command,
        restore_command,
        reset_command,
        rescore_command,
        rerun_command,
        participants_group,
        worker_token_group,
    ):
        app.cli.add_command(command)
