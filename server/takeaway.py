"""A participant's takeaway bundle: their code, scores and curves, the exercises and starter kits, as one zip.

Only the participant's own submissions go in. Private scores go in only for exercises whose private board is
revealed (``exercise_state(db, exercise).revealed``); the starter kits hold no test image and no test label
(``grader/starter_kit.py``). Every entry name is checked: relative, no ``..``, no backslash.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass

from flask import Flask, render_template
from sqlalchemy import select

from grader.data import dataset_paths
from grader.exercises import Exercise
from server.catalog import catalog
from server.curves import draw_curves
from server.datasets import active_dataset
from server.event import exercise_state
from server.models import Participant, Submission
from server.starter_kits import cached_starter_kit
from server.submissions import iso_utc

SCORE_COLUMNS = ("id", "exercise", "dataset", "status", "error_kind", "public_score", "created_at", "finished_at")
_UNDECOMPOSED = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d"})


def safe_slug(text: str, limit: int = 40) -> str:
    """Lower-case ASCII letters, digits and dashes from any text (a display name), never empty."""
    ascii_text = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")
    return slug or "participant"


def bundle_name(participant: Participant) -> str:
    """``takeaway-<name>-<id>``: the zip's file name (without ``.zip``) and its top folder."""
    return f"takeaway-{safe_slug(participant.display_name)}-{participant.id}"


def safe_entry(name: str) -> str:
    """The entry name if it stays inside the zip's folder when unpacked; raises ValueError otherwise."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe zip entry name: {name!r}")
    return name


@dataclass(frozen=True)
class Included:
    """What went into one submission's part of the bundle, for the score table and the home page."""

    submission: Submission
    code_path: str
    curves_path: str | None
    revealed: bool


def own_submissions(db, participant_id: int) -> list[Submission]:
    """The participant's submissions, oldest first: theirs only, whatever the exercise or data set."""
    query = select(Submission).where(Submission.participant_id == participant_id).order_by(Submission.id)
    return list(db.scalars(query))


def revealed_slugs(db, exercises: dict[str, Exercise]) -> set[str]:
    return {slug for slug, exercise in exercises.items() if exercise_state(db, exercise).revealed}


def score_record(item: Included) -> dict:
    """One submission's row: public figures always; the private score and metrics only after the reveal."""
    submission = item.submission
    metrics = submission.metrics or {}
    record = {
        "id": submission.id,
        "exercise": submission.exercise_slug,
        "dataset": submission.dataset,
        "status": submission.status,
        "error_kind": submission.error_kind,
        "public_score": submission.public_score,
        "created_at": iso_utc(submission.created_at),
        "finished_at": iso_utc(submission.finished_at) if submission.finished_at else None,
        "seconds": submission.seconds,
        "final": submission.final,
        "code": item.code_path,
        "curves": item.curves_path,
        "metrics": {key: value for key, value in metrics.items() if key == "public" or item.revealed},
    }
    if item.revealed:
        record["private_score"] = submission.private_score
    return record


def scores_csv(records: list[dict]) -> str:
    """The score table; the private score column exists only where some exercise is revealed."""
    columns = list(SCORE_COLUMNS)
    if any("private_score" in record for record in records):
        columns.append("private_score")
    columns += ["seconds", "final", "code", "curves"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(["" if record.get(column) is None else record.get(column) for column in columns])
    return out.getvalue()


class Bundle:
    """A zip being written under one top folder; refuses unsafe entry names."""

    def __init__(self, folder: str):
        self.folder = safe_entry(folder)
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, name: str, content: str | bytes, compress: bool = True) -> str:
        kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.zip.writestr(safe_entry(f"{self.folder}/{name}"), content, compress_type=kind)
        return name

    def close(self) -> bytes:
        self.zip.close()
        return self.buffer.getvalue()


def add_submissions(bundle: Bundle, submissions: list[Submission], revealed: set[str]) -> list[Included]:
    """Code under ``submissions/<exercise>/<id>-<status>.py``, curves under ``curves/<exercise>/<id>.png``."""
    included = []
    for submission in submissions:
        exercise = safe_slug(submission.exercise_slug, limit=64)
        code = bundle.add(f"submissions/{exercise}/{submission.id}-{safe_slug(submission.status)}.py", submission.code)
        picture = draw_curves(submission.history, f"#{submission.id} {submission.exercise_slug} ({submission.status})")
        curves = bundle.add(f"curves/{exercise}/{submission.id}.png", picture, compress=False) if picture else None
        included.append(Included(submission, code, curves, submission.exercise_slug in revealed))
    return included


def build_takeaway(db, participant: Participant, exercises: dict[str, Exercise], kits: dict[str, bytes]) -> bytes:
    """The zip bytes of one participant's bundle (``kits``: starter kit zip per exercise slug, may be empty).

    Starter kits go in for the exercises the participant submitted to: a kit carries a few MB of images, and
    the other exercises' kits stay one click away on their pages."""
    bundle = Bundle(bundle_name(participant))
    included = add_submissions(bundle, own_submissions(db, participant.id), revealed_slugs(db, exercises))
    records = [score_record(item) for item in included]
    bundle.add("scores.csv", scores_csv(records))
    bundle.add("scores.json", json.dumps(records, indent=2) + "\n")
    tried = {item.submission.exercise_slug for item in included}
    kit_files = {}
    for slug, exercise in exercises.items():
        bundle.add(f"exercises/{safe_slug(slug, limit=64)}/README.md", exercise.readme)
        if slug in kits and slug in tried:  # stored as downloaded: no second compression, no CPU per bundle
            kit_files[slug] = bundle.add(f"exercises/{safe_slug(slug, limit=64)}-starter-kit.zip", kits[slug], False)
    page = render_template(
        "takeaway/continue_at_home.md",
        participant=participant,
        folder=bundle.folder,
        exercises=list(exercises.values()),
        kit_files=kit_files,
        kits_missing=bool(tried) and not kits,
        included=included,
        any_revealed=any(item.revealed for item in included),
    )
    bundle.add("CONTINUE_AT_HOME.md", page)
    return bundle.close()


def starter_kits(app: Flask, db, slugs: set[str] | None = None) -> dict[str, bytes]:
    """The exercises' starter kits (all, or those in ``slugs``) on the active data set, built once per data set
    version and kept; none where the data set is not on this server (the bundle then says so)."""
    dataset = dataset_paths(app.config["DATA_DIR"], active_dataset(db))
    if not dataset.manifest.is_file():
        return {}
    kits = {}
    for slug, exercise in catalog(app).items():
        if slugs is None or slug in slugs:
            kits[slug] = cached_starter_kit(app, exercise, dataset)
    return kits


def takeaway_for(app: Flask, db, participant: Participant) -> bytes:
    """The bundle of one participant, with the catalog and starter kits of this app."""
    tried = {submission.exercise_slug for submission in own_submissions(db, participant.id)}
    return build_takeaway(db, participant, catalog(app), starter_kits(app, db, tried))
