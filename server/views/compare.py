"""Two of one's own submissions side by side (metrics, curves, a diff of the code), the run record's helpers,
and "run again with the same seed".

The run record (templates/submissions/_run_record.html, included by the submission page) calls
``run_record`` and ``compare_choices``, which this blueprint offers every template.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from grader.metrics import METRICS
from server.access import participant_required
from server.catalog import catalog
from server.curves import epoch_metrics
from server.db import get_db
from server.errors import WorkshopError
from server.executor_runtime import notify_executor
from server.figures import curve_svgs, roc_svg
from server.models import Submission
from server.openapi import MAX_SUBMISSION_ID
from server.queueing import queue_submission
from server.submissions import visible_metrics, visible_submission

bp = Blueprint("compare", __name__)
SUBMISSION_ID = f"int(max={MAX_SUBMISSION_ID})"
MAX_CHOICES = 50
MAX_DIFF_LINES = 2000


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    title: str | None = None  # the full value where the shown one is shortened


def run_record(submission: Submission, exercise=None) -> list[Fact]:
    """What a submission ran on, as label/value pairs: what the harness reported, else what is known already."""
    info = submission.run_info if isinstance(submission.run_info, dict) else {}
    pending = "after the run" if not submission.is_terminal else "not reported"
    facts = [
        Fact("Python", str(info.get("python") or pending)),
        Fact("TensorFlow", str(info.get("tensorflow") or pending)),
        Fact("Keras", str(info.get("keras") or pending)),
        Fact("Device", str(info.get("device") or info.get("devices") or pending)),
        Fact("Data set", str(info.get("dataset") or submission.dataset)),
    ]
    checksum = str(info.get("dataset_checksum") or "")
    if checksum:
        short = checksum[:16] + "…" if len(checksum) > 16 else checksum
        facts.append(Fact("Data set checksum (SHA-256)", short, checksum))
    else:
        facts.append(Fact("Data set checksum (SHA-256)", pending))
    limit = _seconds(info.get("time_limit")) or (exercise.time_limit if exercise is not None else None)
    facts.append(Fact("Time limit", f"{limit:g} s" if limit else "unknown"))
    seed = submission.seed if submission.seed is not None else info.get("seed")
    facts.append(Fact("Seed", str(seed) if seed is not None else "none (submitted before seeds were recorded)"))
    return facts


def _seconds(value: object) -> float | None:
    try:
        number = float(value)  # run_info values are stored as text
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def compare_choices(submission: Submission) -> list[Submission]:
    """The same participant's other submissions to the same exercise, newest first (the compare form's list)."""
    return list(
        get_db().scalars(
            select(Submission)
            .where(
                Submission.participant_id == submission.participant_id,
                Submission.exercise_slug == submission.exercise_slug,
                Submission.id != submission.id,
            )
            .order_by(Submission.id.desc())
            .limit(MAX_CHOICES)
        )
    )


@bp.app_context_processor
def run_record_helpers() -> dict:
    return {"run_record": run_record, "compare_choices": compare_choices}


@bp.route("/submissions/compare")
def compare():
    """GET /submissions/compare?a=ID&b=ID: both must be visible to the viewer (their own; the instructor: any)."""
    first, second = (_requested(name) for name in ("a", "b"))
    if first.participant_id != second.participant_id and not g.is_instructor:
        abort(404)  # unreachable for a participant (both are theirs), kept as a second lock
    sides = [_side(first, "a"), _side(second, "b")]
    return render_template(
        "submissions/compare.html",
        sides=sides,
        metrics=metric_rows(sides[0]["metrics"], sides[1]["metrics"]),
        diff=code_diff(first, second),
        exercise=catalog().get(first.exercise_slug),
        same_exercise=first.exercise_slug == second.exercise_slug,
    )


def _requested(name: str) -> Submission:
    raw = request.args.get(name, "")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_SUBMISSION_ID:
        abort(404)
    return visible_submission(int(raw))


def _side(submission: Submission, key: str) -> dict:
    """One column: the figures the viewer may see, the training curves and the ROC curve (public part) as SVG."""
    metrics = visible_metrics(submission)
    figures = metrics.get("figures") if isinstance(metrics.get("figures"), dict) else {}
    public = metrics.get("public") if isinstance(metrics.get("public"), dict) else {}
    roc = figures.get("public") if isinstance(figures.get("public"), dict) else None
    return {
        "submission": submission,
        "metrics": metrics,
        "curves": curve_svgs(submission.history, key=f"curves-{key}"),
        "curves_alt": curves_alt(submission),
        "roc": roc_svg(roc, f"roc-{key}", auc=public.get("roc_auc")) if roc else None,
        "epochs": epoch_metrics(submission.history),
    }


def curves_alt(submission: Submission) -> str:
    """The curves in words: how many epochs, and the last epoch's figures."""
    rows = epoch_metrics(submission.history)
    if not rows:
        return f"Submission {submission.id}: no epochs recorded."
    epoch, values = rows[-1]
    figures = ", ".join(f"{key} {value:.4f}" for key, value in sorted(values.items()))
    return f"Training curves of submission {submission.id}: {len(rows)} epochs; epoch {epoch}: {figures}."


def metric_rows(first: dict, second: dict) -> list[dict]:
    """One row per (partition, metric) either side has: both values and the change from A to B."""
    rows = []
    for partition in ("public", "private"):  # never "figures": those are pictures, not numbers
        left, right = first.get(partition) or {}, second.get(partition) or {}
        if not isinstance(left, dict) or not isinstance(right, dict):
            continue
        for key in dict.fromkeys([*left, *right]):
            a, b = _number(left.get(key)), _number(right.get(key))
            if a is None and b is None:
                continue
            change = b - a if a is not None and b is not None else None
            label = METRICS[key].label if key in METRICS else ("test images" if key == "count" else key)
            whole = key == "count"  # a count, not a figure: no decimals, no colour for its change
            rows.append({"partition": partition, "metric": label, "a": a, "b": b, "change": change, "count": whole})
    return rows


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def code_diff(first: Submission, second: Submission) -> list[tuple[str, str]]:
    """A unified diff of the two codes as (kind, line) pairs: kind is add, del, hunk or same (escaped later)."""
    lines = list(difflib.unified_diff(first.code.splitlines(), second.code.splitlines(), lineterm="", n=3))
    result: list[tuple[str, str]] = []
    for line in lines[2:]:  # after the two header lines (--- and +++)
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        result.append((kind, line))
        if len(result) >= MAX_DIFF_LINES:
            result.append(("hunk", f"… the diff goes on (only the first {MAX_DIFF_LINES} lines are shown)"))
            break
    return result


@bp.route(f"/submissions/<{SUBMISSION_ID}:submission_id>/again", methods=["POST"])
@participant_required
def run_again(submission_id: int):
    """Queue the same code with the same seed again (the same checks and quota as any submission)."""
    original = visible_submission(submission_id)
    if original.participant_id != g.participant.id:
        abort(404)
    exercise = catalog().get(original.exercise_slug)
    if exercise is None:
        abort(404)
    try:
        again = queue_submission(
            get_db(),
            g.participant,
            exercise,
            original.code,
            original.filename,
            current_app.config["MAX_OPEN_SUBMISSIONS"],
            seed=original.seed,
        )
    except WorkshopError as error:
        get_db().rollback()
        flash(f"Not queued: {error.message}")
        return redirect(url_for("submissions.show", submission_id=submission_id))
    notify_executor()
    flash(f"Queued again with seed {again.seed}, the same code as submission {submission_id}.")
    return redirect(url_for("submissions.show", submission_id=again.id))
