"""The building blocks of the API's OpenAPI description: shared types, the error shape, schemas, responses."""

from __future__ import annotations

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


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def error_body(status: int, description: str) -> dict:
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
            "quota": {"oneOf": [ref("schemas", "Quota"), {"type": "null"}], "description": "null: no limit"},
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
            "public_score": {
                **NULLABLE_NUMBER,
                "description": (
                    "the exercise's leaderboard metric (`metric` in exercise.toml: roc_auc unless set) "
                    "on the public part of the test split"
                ),
            },
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
            "seed": {
                "type": ["integer", "null"],
                "description": "the harness seeds Python, NumPy and TensorFlow with it (data.seed); null: older",
            },
        },
    },
    "CreatedSubmission": {
        "allOf": [
            ref("schemas", "Submission"),
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
        "description": "after the reveal also private_score, private_rank and rank_change",
        "properties": {
            "rank": {"type": ["integer", "null"], "minimum": 1, "description": "public rank (null: none)"},
            "display_name": {"type": "string"},
            "public_score": {"type": "number"},
            "submissions": {"type": "integer", "minimum": 0},
            "best_at": TIMESTAMP,
            "private_score": {"type": "number", "description": "after the reveal: the final selection's best"},
            "private_rank": {"type": "integer", "minimum": 1, "description": "after the reveal"},
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
            "revealed": {
                "type": "boolean",
                "description": "the private board is public (see LeaderboardRow)",
            },
            "rows": {"type": "array", "items": ref("schemas", "LeaderboardRow")},
        },
    },
    "CodeJSON": {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": {"type": "string", "description": "the Python source; it must define train(data)"},
            "filename": {"type": "string", "description": "shown with the submission (the last 255 characters)"},
            "seed": {
                "type": ["integer", "string", "null"],
                "description": "0 to 2147483647: seeds Python, NumPy and TensorFlow (data.seed) to repeat a run; "
                "absent, null or empty: a random one (see the submission's seed)",
            },
        },
        "examples": [{"code": EXAMPLE_CODE, "filename": "submission.py"}, {"code": EXAMPLE_CODE, "seed": 1234}],
    },
}

RESPONSES: dict[str, Any] = {
    "BadRequest": error_body(
        400,
        "The code was refused before anything was queued (empty, too large, not UTF-8, a syntax error, no "
        "train(data) at the top level: code `contract`, a seed that is not a whole number, a body that is not the "
        "documented JSON) or you already have the most submissions waiting or running. Costs no quota. A syntax "
        "or contract error names the offending `line` where it can.",
    ),
    "Unauthorized": error_body(401, "No notebook token, or one that is not (or no longer) valid."),
    "NotFound": error_body(404, "No such exercise or route, or a submission that is not yours."),
    "MethodNotAllowed": error_body(405, "The path exists, but not with this method (any method not described here)."),
    "TooLarge": error_body(413, "The request body is larger than the server accepts."),
    "TooManyRequests": error_body(429, "Too many failed logins or wrong tokens from your address: wait and retry."),
    "Closed": error_body(403, "code `closed`: the exercise takes no submissions now (closed, or past its deadline)."),
    "QuotaExhausted": error_body(429, "code quota_exhausted: none left in the quota; see resets_at and Retry-After."),
    "TooManyFinals": error_body(409, "code `too_many_finals`: two submissions are final already; unmark one first."),
}
