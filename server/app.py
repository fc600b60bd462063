"""The Flask app: ``create_app()`` builds it from defaults, then WORKSHOP_* variables, then a test dict."""

from __future__ import annotations

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from server.config import PROJECT_ROOT, defaults, load_secret_key

csrf = CSRFProtect()


def create_app(test_config: dict | None = None) -> Flask:
    instance_path = os.environ.get("WORKSHOP_INSTANCE_PATH", str(PROJECT_ROOT / "instance"))
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder="static",
    )
    app.config.from_mapping(defaults(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("WORKSHOP")
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(app.instance_path)
    trust_proxies(app)

    from server import db, errors, executor_runtime, headers
    from server.views import account, api, auth, event_admin, exercises, instructor, leaderboard, submissions
    from server.views import projector as projector_views
    from server.views import takeaway as takeaway_views
    from server.views.compare import bp as compare_bp
    from server.views.instructor_export import bp as export_bp
    from server.views.participants_admin import bp as participants_bp
    from server.views.submissions_admin import bp as submissions_admin_bp
    from server.views.worker_api import bp as worker_api_bp
    from server.views.workers import bp as workers_bp

    db.init_app(app)
    csrf.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    for blueprint in (auth.bp, account.bp, exercises.bp, submissions.bp, leaderboard.bp, instructor.bp, api.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(event_admin.bp)  # the instructor's event controls (server/views/event_admin.py)
    app.register_blueprint(projector_views.bp)  # the room's full-screen board (server/views/projector.py)
    app.register_blueprint(takeaway_views.bp)  # a participant's own work as one zip (server/views/takeaway.py)
    app.register_blueprint(export_bp)  # export zip and backup notes (server/views/instructor_export.py)
    app.register_blueprint(submissions_admin_bp)  # all submissions, rescore, rerun (server/views/submissions_admin.py)
    app.register_blueprint(workers_bp)  # worker slots and the instructor's warnings (server/views/workers.py)
    app.register_blueprint(participants_bp)  # the participants page (server/views/participants_admin.py)
    app.register_blueprint(compare_bp)  # two submissions side by side, run again (server/views/compare.py)
    app.register_blueprint(worker_api_bp)  # remote workers, with worker tokens (server/views/worker_api.py)
    csrf.exempt(worker_api_bp)  # no cookie is trusted there either
    csrf.exempt(api.bp)  # the API trusts no cookie, only the bearer token (see server/views/api.py)
    app.jinja_env.globals["event_title"] = lambda: app.config["EVENT_TITLE"]
    app.jinja_env.globals["announcement"] = page_announcement
    executor_runtime.init_app(app)
    from server.cli import register_commands

    register_commands(app)
    return app


def page_announcement() -> str | None:
    """The instructor's announcement for the banner on every page (None before `workshop init`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from server.db import get_db
    from server.event import announcement

    try:
        return announcement(get_db())
    except SQLAlchemyError:
        return None


def trust_proxies(app: Flask) -> None:
    """Behind WORKSHOP_TRUSTED_PROXIES=N reverse proxies, take the client's address, scheme and host from the
    X-Forwarded-For/-Proto/-Host that the last N proxies set; without it those headers are ignored (anyone can
    send them)."""
    proxies = app.config.get("TRUSTED_PROXIES") or 0
    if isinstance(proxies, bool) or not isinstance(proxies, int) or not 0 <= proxies <= 10:
        raise ValueError(f"WORKSHOP_TRUSTED_PROXIES must be the number of reverse proxies (0 to 10), not {proxies!r}")
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
