"""The OpenAPI 3.1 description of the JSON API under /api/ (served at ``GET /api/openapi.json``).

tests/web/test_openapi.py checks that its paths and methods are exactly the app's /api/ routes, and
tests/web/test_api_fuzz.py fuzzes a live server with Schemathesis against it: every status, header and body the
API can answer is written here, including every error (``{"error": {"status", "code", "message"}}``, built
by server/errors.py).
"""

from __future__ import annotations

import copy
from typing import Any

from server.openapi_schemas import (
    EXAMPLE_CODE,
    EXAMPLE_SLUG,
    FINAL_BODY,
    MAX_SUBMISSION_ID,
    OPENAPI_VERSION,
    RESPONSES,
    SCHEMAS,
    error_body,
    ref,
)

SLUG = {
    "name": "slug",
    "in": "path",
    "required": True,
    "description": "the exercise's slug, as GET /api/exercises lists it",
    "schema": {"type": "string", "examples": [EXAMPLE_SLUG]},
}
SUBMISSION_ID = {
    "name": "submission_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_SUBMISSION_ID},
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, responses: dict, **extra: Any) -> dict:
    """An operation behind the token: every one of them can answer 401 and 429 before it runs."""
    errors = {"401": ref("responses", "Unauthorized"), "429": ref("responses", "TooManyRequests")}
    return {"summary": summary, **extra, "responses": {**errors, **responses}}


PATHS: dict[str, Any] = {
    "/api/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This description (needs no token).",
            "security": [],
            "responses": {
                "200": _json({"type": "object", "required": ["openapi", "paths"]}, "The OpenAPI document."),
            },
        }
    },
    "/api/exercises": {
        "get": _operation(
            "The exercises, in workshop order.",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["exercises"],
                        "properties": {"exercises": {"type": "array", "items": ref("schemas", "Exercise")}},
                    },
                    "Each exercise: slug, title, image size, time limit, and now: open, deadline, your quota.",
                )
            },
            operationId="listExercises",
        )
    },
    "/api/exercises/{slug}/submissions": {
        "parameters": [SLUG],
        "post": _operation(
            "Submit code: it is checked (size, UTF-8, syntax) and queued.",
            {
                "201": {
                    **_json(ref("schemas", "CreatedSubmission"), "Queued; follow it at Location."),
                    "headers": {
                        "Location": {
                            "required": True,
                            "description": "the submission in this API: /api/submissions/{id}",
                            "schema": {"type": "string", "pattern": "^/api/submissions/[0-9]+$"},
                        }
                    },
                    "links": {
                        "GetSubmission": {
                            "operationId": "getSubmission",
                            "parameters": {"submission_id": "$response.body#/id"},
                        }
                    },
                },
                "400": ref("responses", "BadRequest"),
                "403": ref("responses", "Closed"),
                "404": ref("responses", "NotFound"),
                "413": ref("responses", "TooLarge"),
                "429": ref("responses", "QuotaExhausted"),
            },
            operationId="submit",
            description=(
                'Send the code in one of three ways: JSON `{"code": ..., "filename": ...}`, a multipart upload '
                "in the field `file` (a name ending in .py), or the raw source as the request body. At most a few "
                "submissions per participant may be waiting or running at once."
            ),
            requestBody={
                "required": True,
                "content": {
                    "application/json": {"schema": ref("schemas", "CodeJSON")},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                    "text/plain": {"schema": {"type": "string", "examples": [EXAMPLE_CODE]}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            },
        ),
        "get": _operation(
            "Your latest 50 submissions to this exercise, newest first.",
            {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["submissions"],
                        "properties": {"submissions": {"type": "array", "items": ref("schemas", "SubmissionSummary")}},
                    },
                    "Your submissions (never anybody else's).",
                ),
                "404": ref("responses", "NotFound"),
            },
            operationId="listMySubmissions",
        ),
    },
    "/api/submissions/{submission_id}": {
        "parameters": [SUBMISSION_ID],
        "get": _operation(
            "One of your submissions: status, score, metrics, per-epoch history, log.",
            {
                "200": _json(ref("schemas", "Submission"), "The submission."),
                "404": ref("responses", "NotFound"),
            },
            operationId="getSubmission",
        ),
    },
    "/api/submissions/{submission_id}/final": {
        "parameters": [SUBMISSION_ID],
        "post": _operation(
            "Mark one of your finished submissions as final, or unmark it.",
            {
                "200": _json(ref("schemas", "Submission"), "The submission, with `final` as asked."),
                "400": error_body(400, 'The body is not {"final": true|false}, or the submission has no public score.'),
                "404": ref("responses", "NotFound"),
                "409": ref("responses", "TooManyFinals"),
            },
            operationId="setFinal",
            description=(
                "At most two submissions per exercise are final; they count for the private board. "
                "While none is marked, your two best public scores count."
            ),
            requestBody={"required": True, "content": {"application/json": {"schema": FINAL_BODY}}},
        ),
    },
    "/api/leaderboard/{slug}": {
        "parameters": [SLUG],
        "get": _operation(
            "The public leaderboard of an exercise (the private scores stay hidden until the reveal).",
            {
                "200": _json(
                    ref("schemas", "Leaderboard"),
                    "Best public score of each participant, ranked (frozen: as at the freeze).",
                ),
                "404": ref("responses", "NotFound"),
            },
            operationId="leaderboard",
        ),
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": OPENAPI_VERSION,
    "info": {
        "title": "Workshop server notebook API",
        "version": "1",
        "description": (
            "Submit code from a notebook and follow it. Every operation but this description needs the "
            "participant's personal notebook token (made on the Notebook page, /account) as "
            "`Authorization: Bearer <token>`; the session cookie opens nothing here. Every error is JSON: "
            '`{"error": {"status", "code", "message"}}`; a method not described here answers 405.'
        ),
    },
    "security": [{"notebookToken": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "notebookToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The personal notebook token from /account (a new one revokes the old).",
            }
        },
        "schemas": SCHEMAS,
        "responses": RESPONSES,
    },
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the description (callers may change it)."""
    return copy.deepcopy(DOCUMENT)
