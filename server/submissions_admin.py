"""All submissions for the instructor, filtered by participant, exercise, status, error kind and data set."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from sqlalchemy import func, select

from server.models import Participant, Submission

PER_PAGE = 50
FILTERS = ("participant", "exercise", "status", "error_kind", "dataset")


@dataclass(frozen=True)
class SubmissionPage:
    """One page of (submission, participant name) rows, with the filters and counts that produced it."""

    rows: list
    total: int
    page: int
    pages: int
    filters: dict


def clean_filters(args) -> dict:
    """The known filters from GET parameters (blank ones left out); participant is an id or a name."""
    return {key: str(args.get(key, "")).strip()[:200] for key in FILTERS if str(args.get(key, "")).strip()}


def _conditions(filters: dict) -> list:
    conditions = []
    who = filters.get("participant")
    if who:
        by_name = func.lower(Participant.display_name) == who.lower()
        conditions.append((Submission.participant_id == int(who)) | by_name if who.isdigit() else by_name)
    columns = {"exercise": Submission.exercise_slug, "status": Submission.status}
    columns |= {"error_kind": Submission.error_kind, "dataset": Submission.dataset}
    conditions += [column == filters[key] for key, column in columns.items() if filters.get(key)]
    return conditions


def filtered_submissions(db, filters: dict, page: int = 1, per_page: int = PER_PAGE) -> SubmissionPage:
    """Newest first, ``per_page`` a page; a page beyond the last shows the last."""
    conditions = _conditions(filters)
    joined = select(func.count(Submission.id)).join(Participant, Participant.id == Submission.participant_id)
    total = db.scalar(joined.where(*conditions)) or 0
    pages = max(1, ceil(total / per_page))
    page = min(max(1, page), pages)
    query = (
        select(Submission, Participant.display_name)
        .join(Participant, Participant.id == Submission.participant_id)
        .where(*conditions)
        .order_by(Submission.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return SubmissionPage(list(db.execute(query).all()), total, page, pages, filters)


def filter_choices(db) -> dict:
    """The values each select offers: the exercises, statuses, error kinds and data sets that occur."""
    return {
        key: sorted(value for value in db.scalars(select(column).distinct()) if value)
        for key, column in (
            ("exercise", Submission.exercise_slug),
            ("status", Submission.status),
            ("error_kind", Submission.error_kind),
            ("dataset", Submission.dataset),
        )
    }
