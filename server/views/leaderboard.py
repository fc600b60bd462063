"""Leaderboards: one per exercise, refreshing themselves for the projector."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template

from server.catalog import catalog, get_exercise
from server.db import get_db
from server.scoreboard import leaderboard_rows, standings

bp = Blueprint("leaderboard", __name__)


@bp.route("/leaderboard")
def index():
    boards = [(exercise, standings(get_db(), exercise.slug)[:10]) for exercise in catalog().values()]
    return render_template("leaderboard/index.html", boards=boards)


@bp.route("/leaderboard/<slug>")
def show(slug: str):
    exercise = get_exercise(slug)
    return render_template("leaderboard/show.html", exercise=exercise, rows=standings(get_db(), slug))


@bp.route("/leaderboard/<slug>.json")
def show_json(slug: str):
    get_exercise(slug)
    return jsonify(exercise=slug, rows=leaderboard_rows(get_db(), slug, include_private=g.is_instructor))
