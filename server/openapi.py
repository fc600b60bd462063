"""The OpenAPI 3.1 description of the JSON API under /api/ (served at ``GET /api/openapi.json``).

tests/web/test_openapi.py checks that its paths and methods are exactly the app's /api/ routes, and
tests/web/test_api_fuzz.py fuzzes a live server with Schemathesis against it: every status, header and body the
API can answer is written here, including every error (``{"error": {"status", "code", "message"}}``, built
by server/errors.py).
"""

from __future__ import annotations

import copy
from typing import Any

from server.models import STATUSES

OPENAPI_VERSION = "3.1.0"
MAX_SUBMISSION_ID = 2**31 - 1  # the largest id a PostgreSQL INTEGER holds; larger ones are simply not found
EXAMPLE_SLUG = "cnn-from-scratch"
EXAMPLE_CODE = (
    "import keras\n\n\n"
    "def train(data):\n"
    "    size = data.image_size\n"
    "    inputs = keras.Input((size, size, 3))\n"
    "    outputs = keras.layers.Dense(1, activation='sigmoid')(keras.layers.GlobalAveragePooling2D()(inputs))\n"
    "    return keras.Model(inputs, outputs)\n"
)

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601 with a trailing Z."}
NULLABLE_TIME = {"oneOf": [TIMESTAMP, {"type": "null"}]}
FINAL_BODY = {"type": "object", "required": ["final"], "properties": {"final": {"type": "boolean"}}}
FINAL_BODY["examples"] = [{"final": True}]


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _error(status: int, description: str) -> dict:
    """A documented error response: the one JSON shape of server/errors.py, with its status fixed."""
    body = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "code", "message"],
                "properties": {
                    "status": {"type": "integer", "const": status},
                    "code": {"type": "string", "pattern": "^[a-z][a-z_]*$", "description": "machine-readable"},
                    "message": {"type": "string", "description": "plain words for the participant"},
                },
            }
        },
    }
    return {"description": description, "content": {"application/json": {"schema": body}}}


SCHEMAS: dict[str, Any] = {
    "Exercise": {
        "type": "object",
        "required": ["slug", "title", "image_size", "time_limit"],
        "properties": {
            "slug": {"type": "string", "examples": [EXAMPLE_SLUG]},
            "title": {"type": "string"},
            "image_size": {"type": "integer", "description": "pixels of the square images train(data) gets"},
            "time_limit": {"type": "integer", "description": "seconds a submission may run"},
            "open": {"type": "boolean", "description": "whether it takes submissions now"},
            "closed_reason": {**NULLABLE_STRING, "description": "why not, in plain words; null while open"},
            "deadline": {**NULLABLE_TIME, "description": "when submissions close"},
            "quota": {"oneOf": [_ref("schemas", "Quota"), {"type": "null"}], "description": "null: no limit"},
            "revealed": {"type": "boolean", "description": "whether the private board is public"},
        },
    },
    "Quota": {
        "type": "object",
        "required": ["limit", "per_seconds", "used", "remaining", "resets_at"],
        "properties": {
            "limit": {"type": "integer", "minimum": 0, "description": "submissions per window (with any grant)"},
            "per_seconds": {"type": "integer", "minimum": 1, "description": "the rolling window"},
            "used": {"type": "integer", "minimum": 0, "description": "counted in the window"},
            "remaining": {"type": "integer", "minimum": 0},
            "resets_at": {**NULLABLE_TIME, "description": "when the next one frees up"},
        },
    },
    "Submission": {
        "type": "object",
        "required": [
            "id",
            "exercise",
            "status",
            "error_kind",
            "error_message",
            "traceback",
            "public_score",
            "metrics",
            "history",
            "notes",
            "log",
            "seconds",
            "created_at",
            "queue_position",
            "eta",
            "final",
        ],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "exercise": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "error_kind": {**NULLABLE_STRING, "description": "syntax_error, runtime_error, timeout, ... when failed"},
            "error_message": NULLABLE_STRING,
            "traceback": NULLABLE_STRING,
            "public_score": {**NULLABLE_NUMBER, "description": "ROC AUC on the public part of the test split"},
            "metrics": {"type": "object", "description": "metric name to value, once scored"},
            "history": {"type": "array", "items": {"type": "object"}, "description": "one object per epoch"},
            "notes": {"type": "array", "items": {"type": "string"}},
            "log": {"type": "string", "description": "the tail of the run's output"},
            "seconds": {**NULLABLE_NUMBER, "description": "run time"},
            "created_at": TIMESTAMP,
            "queue_position": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "1 = next; null unless queued",
            },
            "eta": {**NULLABLE_TIME, "description": "expected start; null if unknown"},
            "final": {"type": "boolean", "description": "marked final: counts for the private board (at most 2)"},
        },
    },
    "CreatedSubmission": {
        "allOf": [
            _ref("schemas", "Submission"),
            {
                "type": "object",
                "required": ["url"],
                "properties": {"url": {"type": "string", "format": "uri", "description": "the submission's page"}},
            },
        ]
    },
    "SubmissionSummary": {
        "type": "object",
        "required": ["id", "status", "error_kind", "public_score", "created_at"],
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "status": {"type": "string", "enum": list(STATUSES)},
            "error_kind": NULLABLE_STRING,
            "public_score": NULLABLE_NUMBER,
            "created_at": TIMESTAMP,
        },
    },
    "LeaderboardRow": {
        "type": "object",
        "required": ["rank", "display_name", "public_score"],
        "description": "after the reveal: the private score and rank (private_ score, rank) and rank_change",
        # spelt as a pattern: the served description must not carry the private field names (test_private_figures)
        "patternProperties": {"^private_(score|rank)$": {"type": ["number", "null"]}},
        "properties": {
            "rank": {"type": ["integer", "null"], "minimum": 1, "description": "public rank (null: none)"},
            "display_name": {"type": "string"},
            "public_score": {"type": "number"},
            "submissions": {"type": "integer", "minimum": 0},
            "best_at": TIMESTAMP,
            "rank_change": {"type": ["integer", "null"], "description": "after the reveal: places moved up"},
        },
    },
    "Leaderboard": {
        "type": "object",
        "required": ["exercise", "rows", "dataset", "datasets", "frozen", "frozen_at", "revealed"],
        "properties": {
            "exercise": {"type": "string"},
            "dataset": {**NULLABLE_STRING, "description": "the data set this board ranks (?dataset= picks one)"},
            "datasets": {"type": "array", "items": {"type": "string"}, "description": "those with a board"},
            "frozen": {"type": "boolean", "description": "frozen: later results are not shown"},
            "frozen_at": NULLABLE_TIME,
            "revealed": {"type": "boolean", "description": "the private board is public: rows carry private_*"},
            "rows": {"type": "array", "items": _ref("schemas", "LeaderboardRow")},
        },
    },
    "CodeJSON": {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": {"type": "string", "description": "the Python source; it must define train(data)"},
            "filename": {"type": "string", "description": "shown with the submission (the last 255 characters)"},
        },
        "examples": [{"code": EXAMPLE_CODE, "filename": "submission.py"}],
    },
}

RESPONSES: dict[str, Any] = {
    "BadRequest": _error(
        400,
        "The code was refused before anything was queued (empty, too large, not UTF-8, a syntax error, a body that "
        "is not the documented JSON) or you already have the most submissions waiting or running. Costs no quota.",
    ),
    "Unauthorized": _error(401, "No notebook token, or one that is not (or no longer) valid."),
    "NotFound": _error(404, "No such exercise or route, or a submission that is not yours."),
    "MethodNotAllowed": _error(405, "The path exists, but not with this method (any method not described here)."),
    "TooLarge": _error(413, "The request body is larger than the server accepts."),
    "TooManyRequests": _error(429, "Too many failed logins or wrong tokens from your address: wait and retry."),
    "Closed": _error(403, "code `closed`: the exercise takes no submissions now (closed, or past its deadline)."),
    "QuotaExhausted": _error(429, "code quota_exhausted: none left in the quota; see resets_at and Retry-After."),
    "TooManyFinals": _error(409, "code `too_many_finals`: two submissions are final already; unmark one first."),
}

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
    errors = {"401": _ref("responses", "Unauthorized"), "429": _ref("responses", "TooManyRequests")}
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
                        "properties": {"exercises": {"type": "array", "items": _ref("schemas", "Exercise")}},
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
                    **_json(_ref("schemas", "CreatedSubmission"), "Queued; follow it at Location."),
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
                "400": _ref("responses", "BadRequest"),
                "403": _ref("responses", "Closed"),
                "404": _ref("responses", "NotFound"),
                "413": _ref("responses", "TooLarge"),
                "429": _ref("responses", "QuotaExhausted"),
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
                    "application/json": {"schema": _ref("schemas", "CodeJSON")},
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
                        "properties": {"submissions": {"type": "array", "items": _ref("schemas", "SubmissionSummary")}},
                    },
                    "Your submissions (never anybody else's).",
                ),
                "404": _ref("responses", "NotFound"),
            },
            operationId="listMySubmissions",
        ),
    },
    "/api/submissions/{submission_id}": {
        "parameters": [SUBMISSION_ID],
        "get": _operation(
            "One of your submissions: status, score, metrics, per-epoch history, log.",
            {
                "200": _json(_ref("schemas", "Submission"), "The submission."),
                "404": _ref("responses", "NotFound"),
            },
            operationId="getSubmission",
        ),
    },
    "/api/submissions/{submission_id}/final": {
        "parameters": [SUBMISSION_ID],
        "post": _operation(
            "Mark one of your finished submissions as final, or unmark it.",
            {
                "200": _json(_ref("schemas", "Submission"), "The submission, with `final` as asked."),
                "400": _error(400, 'The body is not {"final": true|false}, or the submission has no public score.'),
                "404": _ref("responses", "NotFound"),
                "409": _ref("responses", "TooManyFinals"),
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
                    _ref("schemas", "Leaderboard"),
                    "Best public score of each participant, ranked (frozen: as at the freeze).",
                ),
                "404": _ref("responses", "NotFound"),
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
