"""The instructor's overview: participants, the queue, recent submissions."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from sqlalchemy import func, select

from grader.data.layout import (
    CLASS_NAMES,
    DatasetError,
    check_dataset,
    class_balance,
    dataset_paths,
    list_datasets,
    sample_indices,
    thumbnail_png,
)
from server.access import instructor_required
from server.datasets import activate_dataset, active_dataset
from server.db import get_db
from server.models import Participant, Submission, WorkerSlot, utcnow
from server.queueing import cancel_submission

bp = Blueprint("instructor", __name__, url_prefix="/instructor")


@bp.route("/")
@instructor_required
def index():
    db = get_db()
    counts = dict(db.execute(select(Submission.status, func.count(Submission.id)).group_by(Submission.status)).all())
    recent = db.execute(
        select(Submission, Participant.display_name).join(Participant).order_by(Submission.id.desc()).limit(50)
    ).all()
    participants = db.scalar(select(func.count(Participant.id)))
    return render_template(
        "instructor/index.html",
        counts=counts,
        recent=recent,
        participants=participants,
        dataset=active_dataset(db),
        slots=worker_slots(db),
        silent_after=SLOT_SILENT_SECONDS,
        now=utcnow(),
    )


@bp.route("/submissions/<int:submission_id>/cancel", methods=["POST"])
@instructor_required
def cancel(submission_id: int):
    """Cancel a queued or running submission from the overview (the page asks first)."""
    db = get_db()
    submission = db.get(Submission, submission_id)
    if submission is None:
        abort(404)
    if cancel_submission(db, submission):
        flash(f"Submission #{submission_id} was cancelled.")
    else:
        flash(f"Submission #{submission_id} had already finished; nothing was cancelled.")
    return redirect(url_for("instructor.index"))


SLOT_SILENT_SECONDS = 120  # a slot that has not reported for this long is shown as silent (its worker may be gone)
SLOT_FORGET_SECONDS = 3600  # stopped or silent slots older than this are no longer listed


def worker_slots(db) -> list[WorkerSlot]:
    """The slots that reported recently, paused and dead ones first: what the instructor must act on."""
    since = utcnow() - timedelta(seconds=SLOT_FORGET_SECONDS)
    rows = db.scalars(select(WorkerSlot).where(WorkerSlot.heartbeat_at >= since).order_by(WorkerSlot.name)).all()
    urgency = {"dead": 0, "paused": 1, "busy": 2, "idle": 3, "stopped": 4}
    return sorted(rows, key=lambda row: urgency.get(row.state, 5))


SAMPLES_PER_CLASS = 12


def describe_dataset(name: str) -> dict:
    """Manifest facts, class balance per split and sample rows per class for one data set."""
    paths = dataset_paths(current_app.config["DATA_DIR"], name)
    try:
        manifest = check_dataset(paths)
        balance = class_balance(paths)
    except DatasetError as error:
        return {"name": name, "error": str(error)}
    samples = {name: sample_indices(paths, "train", label, SAMPLES_PER_CLASS) for label, name in enumerate(CLASS_NAMES)}
    return {"name": paths.name, "manifest": manifest, "balance": balance, "samples": samples}


@bp.route("/data")
@instructor_required
def data():
    names = list_datasets(current_app.config["DATA_DIR"])
    return render_template(
        "instructor/data.html",
        datasets=[describe_dataset(name) for name in names],
        active=active_dataset(get_db()),
        class_names=CLASS_NAMES,
    )


@bp.route("/data/<name>/activate", methods=["POST"])
@instructor_required
def activate(name: str):
    try:
        activate_dataset(get_db(), current_app.config["DATA_DIR"], name)
    except DatasetError as error:
        abort(400, str(error))
    flash(f"New submissions are now graded on data set {name}.")
    return redirect(url_for("instructor.data"))


@bp.route("/data/<name>/<split>/<int:index>.png")
@instructor_required
def thumbnail(name: str, split: str, index: int):
    try:
        png = thumbnail_png(dataset_paths(current_app.config["DATA_DIR"], name), split, index)
    except DatasetError:
        abort(404)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})
