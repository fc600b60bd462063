"""Domain exceptions carry their HTTP status; one function builds every JSON error, one template every HTML one."""

from __future__ import annotations

from flask import Flask, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


class WorkshopError(Exception):
    """An error the user sees: its status and code, a message, and optional details and headers."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class TooManyRequests(WorkshopError):
    status = 429
    code = "too_many_requests"


class NotFound(WorkshopError):
    status = 404
    code = "not_found"


def wants_json() -> bool:
    return (
        request.path.startswith("/api/")
        or request.path.endswith(".json")
        or (request.accept_mimetypes.best == "application/json")
    )


def error_response(status: int, code: str, message: str, details: dict | None = None):
    """The one place that shapes an error: ``{"error": {"status", "code", "message", ...details}}`` or the page."""
    if wants_json():
        return jsonify(error={**(details or {}), "status": status, "code": code, "message": message}), status
    return render_template("error.html", status=status, message=message), status


def _rollback() -> None:
    session = g.get("db")
    if session is not None:
        session.rollback()


def init_app(app: Flask) -> None:
    @app.errorhandler(WorkshopError)
    def handle_workshop_error(error: WorkshopError):
        _rollback()
        response = make_response(error_response(error.status, error.code, error.message, error.details))
        response.headers.update(error.headers)
        return response

    @app.errorhandler(CSRFError)
    def handle_csrf(error: CSRFError):
        message = "The form expired or was sent from another site. Reload the page and try again."
        return error_response(400, "csrf", message)

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException):
        _rollback()
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if error.code == 413:
            limit_kib = app.config["MAX_CONTENT_LENGTH"] // 1024
            message = f"The upload is too large: at most {limit_kib} KiB per request."
        response = make_response(error_response(error.code or 500, code, message))
        if error.code == 405 and getattr(error, "valid_methods", None):  # RFC 9110: a 405 names what is allowed
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        _rollback()
        app.logger.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side. Please try again.")
