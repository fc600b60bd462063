"""Leaderboards: one per exercise, refreshing themselves for the projector."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template

from server.catalog import catalog, get_exercise
from server.db import get_db
from server.scoreboard import standings

bp = Blueprint("leaderboard", __name__)


@bp.route("/leaderboard")
def index():
    boards = [(exercise, standings(get_db(), exercise.slug)[:10]) for exercise in catalog().values()]
    return render_template("leaderboard/index.html", boards=boards)


@bp.route("/leaderboard/<slug>")
def show(slug: str):
    exercise = get_exercise(slug)
    return render_template("leaderboard/show.html", exercise=exercise, rows=standings(get_db(), slug))


def leaderboard_rows(slug: str, include_private: bool) -> list[dict]:
    """The standings as JSON rows; private scores only for the instructor."""
    return [
        {
            "rank": row.rank,
            "display_name": row.display_name,
            "public_score": row.public_score,
            "submissions": row.submissions,
            "best_at": row.best_at.isoformat() + "Z",
            **({"private_score": row.private_score} if include_private else {}),
        }
        for row in standings(get_db(), slug)
    ]


@bp.route("/leaderboard/<slug>.json")
def show_json(slug: str):
    get_exercise(slug)
    return jsonify(exercise=slug, rows=leaderboard_rows(slug, include_private=g.is_instructor))
