"""``workshop rescore`` (from the kept predictions, seconds) and ``workshop rerun`` (in full, low priority, free)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from server.db import new_session
from server.models import Submission


def _target(submission_id: int | None, exercise: str | None) -> None:
    if (submission_id is None) == (exercise is None):
        raise click.UsageError("give one submission ID or --exercise SLUG")


@click.command("rescore")
@click.argument("submission_id", type=int, required=False)
@click.option("--exercise", help="Rescore every scored submission of this exercise.")
@with_appcontext
def rescore_command(submission_id: int | None, exercise: str | None) -> None:
    """Score a submission (or all of an exercise) again from its kept predictions; the old verdict is kept."""
    from server.rescoring import CannotRescore, rescore, rescore_exercise

    _target(submission_id, exercise)
    with new_session(current_app) as db:
        if exercise:
            outcome = rescore_exercise(current_app, db, exercise)
            for refused_id, reason in outcome.refused.items():
                click.echo(f"#{refused_id}: {reason}")
            click.echo(f"Rescored {len(outcome.done)} submissions of {exercise}; {len(outcome.refused)} could not be.")
            return
        submission = db.get(Submission, submission_id)
        if submission is None:
            raise click.ClickException(f"no submission {submission_id}")
        try:
            rescore(current_app, db, submission)
        except CannotRescore as error:
            raise click.ClickException(f"#{submission_id}: {error}") from None
        db.commit()
        click.echo(f"#{submission_id} rescored: public {submission.public_score}, private {submission.private_score}")


@click.command("rerun")
@click.argument("submission_id", type=int, required=False)
@click.option("--exercise", help="Rerun every finished submission of this exercise (asks --yes).")
@click.option("--yes", is_flag=True, help="Confirm rerunning a whole exercise.")
@with_appcontext
def rerun_command(submission_id: int | None, exercise: str | None, yes: bool) -> None:
    """Queue a submission (or all of an exercise) again in full: after everyone's own jobs, never charged."""
    from server.rescoring import CannotRescore, rerun, rerun_exercise

    _target(submission_id, exercise)
    with new_session(current_app) as db:
        if exercise:
            if not yes:
                raise click.ClickException(f"this reruns every finished submission of {exercise}; add --yes")
            outcome = rerun_exercise(db, exercise)
            click.echo(f"Queued {len(outcome.done)} submissions of {exercise} again (priority -1, not charged).")
            return
        submission = db.get(Submission, submission_id)
        if submission is None:
            raise click.ClickException(f"no submission {submission_id}")
        try:
            rerun(db, submission)
        except CannotRescore as error:
            raise click.ClickException(str(error)) from None
        db.commit()
        click.echo(f"#{submission_id} queued again (priority -1, not charged).")
