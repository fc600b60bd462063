"""Leaderboards: one per exercise and data set; frozen for participants during a freeze, private after a reveal."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template

from server.boards import build_board, requested_dataset
from server.catalog import catalog, get_exercise
from server.db import get_db

bp = Blueprint("leaderboard", __name__)


@bp.route("/leaderboard")
def index():
    db = get_db()
    boards = [build_board(db, exercise, instructor=g.is_instructor) for exercise in catalog().values()]
    return render_template("leaderboard/index.html", boards=boards)


@bp.route("/leaderboard/<slug>")
def show(slug: str):
    board = build_board(get_db(), get_exercise(slug), dataset=requested_dataset(), instructor=g.is_instructor)
    return render_template("leaderboard/show.html", exercise=board.exercise, board=board)


@bp.route("/leaderboard/<slug>.json")
def show_json(slug: str):
    board = build_board(get_db(), get_exercise(slug), dataset=requested_dataset(), instructor=g.is_instructor)
    return jsonify(board.as_json(include_private_scores=g.is_instructor))
