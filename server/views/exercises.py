"""Exercise pages: the list, one exercise (README, starter, submit form), starter download, submitting."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from markdown_it import MarkdownIt
from markupsafe import Markup

from grader.data import dataset_paths
from server.access import participant_required
from server.catalog import catalog, get_exercise
from server.datasets import active_dataset
from server.db import get_db
from server.errors import WorkshopError
from server.event import exercise_json
from server.executor_runtime import notify_executor
from server.progress import EditorCode, editor_code, error_line, progress_by_exercise
from server.queueing import queue_submission
from server.quotas import describe_seconds
from server.scoreboard import MAX_FINAL, final_selection
from server.starter_kits import cached_starter_kit
from server.submissions import my_submissions, uploaded_code

bp = Blueprint("exercises", __name__)


_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_readme(text: str) -> Markup:
    """Render an exercise README; raw HTML in it is escaped, not passed through (html=False).

    A leading ``# Title`` line is dropped: the page shows the exercise's title above the README already.
    """
    lines = text.lstrip().splitlines()
    if lines and lines[0].startswith("# "):
        text = "\n".join(lines[1:])
    return Markup(_markdown.render(text))  # noqa: S704 - markdown-it escapes all input HTML


@bp.route("/")
def index():
    """The exercises, each with the participant's own progress (nothing personal for a visitor)."""
    db = get_db()
    progress = progress_by_exercise(db, g.participant.id, active_dataset(db)) if g.participant else {}
    return render_template("exercises/index.html", exercises=list(catalog().values()), progress=progress)


@bp.route("/exercises/<slug>")
def show(slug: str):
    """The editor opens with the participant's last submission (or ``?from=<id>``, ``?starter=1``)."""
    exercise = get_exercise(slug)
    db = get_db()
    submissions = my_submissions(db, g.participant, slug)
    editor = editor_code(db, g.participant, exercise, submissions[0] if submissions else None, request.args)
    return render_template("exercises/show.html", **_page(exercise, submissions, editor))


def _page(exercise, submissions, editor: EditorCode, code_error: dict | None = None) -> dict:
    """What the exercise page shows: README, the code, the event's state for this participant, their submissions.

    ``code_error``: why the submission just sent was refused (``message``, ``line``), shown beside the editor.
    """
    db = get_db()
    state = exercise_json(db, exercise, g.participant.id if g.participant else None)
    counting = set()
    if g.participant is not None:
        counting = {row.id for row in final_selection(db, g.participant.id, exercise.slug, active_dataset(db))}
    return {
        "exercise": exercise,
        "readme": render_readme(exercise.readme),
        "code": editor.code,
        "editor": editor,
        "submissions": submissions,
        "state": state,
        "blocked": blocked_reason(state),
        "per_words": describe_seconds(state["quota"]["per_seconds"]) if state["quota"] else None,
        "counting": counting,
        "any_final": any(row.final for row in submissions),
        "max_final": MAX_FINAL,
        "code_error": code_error,
    }


def blocked_reason(state: dict) -> str | None:
    """Why the submit button is disabled now (closed, past the deadline, no quota left), or None."""
    if state["closed_reason"]:
        return state["closed_reason"]
    quota = state["quota"]
    if quota and quota["remaining"] == 0:
        per = describe_seconds(quota["per_seconds"])
        return f"You have used all {quota['limit']} submissions allowed per {per} for this exercise."
    return None


@bp.route("/exercises/<slug>/starter.py")
def starter(slug: str):
    exercise = get_exercise(slug)
    return Response(
        exercise.starter,
        mimetype="text/x-python",
        headers={"Content-Disposition": f'attachment; filename="{exercise.slug}-starter.py"'},
    )


@bp.route("/exercises/<slug>/starter-kit.zip")
def starter_kit(slug: str):
    """A zip to work locally: starter, README, the harness, a local runner and a small labelled sample."""
    exercise = get_exercise(slug)
    dataset = dataset_paths(current_app.config["DATA_DIR"], active_dataset(get_db()))
    kit = cached_starter_kit(current_app._get_current_object(), exercise, dataset)
    return Response(
        kit,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{exercise.slug}-starter-kit.zip"'},
    )


@bp.route("/exercises/<slug>/submit", methods=["POST"])
@participant_required
def submit(slug: str):
    exercise = get_exercise(slug)
    code = None
    try:
        code, filename = uploaded_code() or (request.form.get("code", ""), None)
        submission = queue_submission(
            get_db(),
            g.participant,
            exercise,
            code,
            filename,
            current_app.config["MAX_OPEN_SUBMISSIONS"],
            seed=request.form.get("seed"),
        )
    except WorkshopError as error:
        return _rejected(exercise, error, code)
    notify_executor()
    flash("Submitted. Your code is in the queue.")
    return redirect(url_for("submissions.show", submission_id=submission.id))


def _rejected(exercise, error: WorkshopError, code: bytes | str | None = None):
    """Show the problem beside the editor at once, keeping what the participant wrote (nothing is lost)."""
    if isinstance(code, bytes):
        code = code.decode("utf-8", errors="replace")
    code = code if code is not None else request.form.get("code", exercise.starter)
    submissions = my_submissions(get_db(), g.participant, exercise.slug)
    editor = EditorCode(code, "sent", chosen=True)
    problem = {"message": error.message, "line": error_line(error)}
    return render_template("exercises/show.html", **_page(exercise, submissions, editor, problem)), error.status
