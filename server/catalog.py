"""The exercise catalog, loaded once per app from EXERCISES_DIR."""

from __future__ import annotations

from flask import Flask, current_app

from grader.exercises import Exercise, load_catalog
from server.errors import NotFound


def catalog(app: Flask | None = None) -> dict[str, Exercise]:
    app = app or current_app
    if "catalog" not in app.extensions:
        app.extensions["catalog"] = load_catalog(app.config["EXERCISES_DIR"])
    return app.extensions["catalog"]


def get_exercise(slug: str) -> Exercise:
    exercise = catalog().get(slug)
    if exercise is None:
        raise NotFound(f"There is no exercise called {slug!r}.")
    return exercise
