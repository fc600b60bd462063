"""The OpenAPI description of /api/: served without a token, valid, exactly the routes, true of hostile requests."""

from __future__ import annotations

import io
import json
import re
import secrets

import jsonschema_rs
import pytest
import schemathesis
from factories import make_participant
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.errors import FailureGroup
from sqlalchemy import select

from server.db import new_session
from server.models import Submission, utcnow
from server.openapi import openapi_document
from server.passwords import TOKEN_PREFIX

SLUG = "cnn-from-scratch"
TRAIN = "def train(data):\n    return None\n"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ANY_PARAMETERS = {"slug": SLUG, "submission_id": 1}  # a case needs them (only to find the base URL)


def api_routes(app) -> set[tuple[str, str]]:
    """(path in OpenAPI form, method) of every route under /api/; HEAD and OPTIONS are Flask's own."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def test_the_description_documents_exactly_the_api_routes(app):
    assert documented_operations(openapi_document()) == api_routes(app)
    assert len(api_routes(app)) >= 6


def test_a_new_undocumented_route_is_noticed(app):
    app.add_url_rule("/api/extra/<int:number>", "extra", lambda number: "", methods=["DELETE"])
    missing = api_routes(app) - documented_operations(openapi_document())
    assert missing == {("/api/extra/{number}", "delete")}


def test_path_parameters_match_the_converters(app):
    """An <int:...> route has an integer parameter of that name; every other parameter is a string."""
    document = openapi_document()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^<>]*:)?(\w+)>", r"{\1}", rule.rule)
        converters = re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule)
        expected = {name: "integer" if converter == "int" else "string" for converter, name in converters}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            item = document["paths"][path]
            declared = item.get("parameters", []) + item[method.lower()].get("parameters", [])
            params = {p["name"]: p["schema"]["type"] for p in declared if p["in"] == "path"}
            assert params == expected, (path, method)


def embedded_schemas(node):
    """Every JSON Schema in the document: the values of "schema" keys and of components/schemas."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema":
                yield value
            elif key == "schemas":
                yield from value.values()
            yield from embedded_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from embedded_schemas(value)


def test_the_description_is_served_without_a_token_and_is_valid(app):
    api = app.test_client(use_cookies=False)
    response = api.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document == json.loads(json.dumps(openapi_document()))
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    for schema in embedded_schemas(document):
        jsonschema_rs.meta.validate(schema)  # each body schema is itself valid JSON Schema 2020-12
    broken = json.loads(json.dumps(document))
    del broken["paths"]["/api/exercises"]["get"]["responses"]["200"]["description"]
    with pytest.raises(jsonschema_rs.ValidationError, match="description"):
        schemathesis.openapi.from_dict(broken).validate()
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.meta.validate({"type": "nonsense"})
    # the exception is exactly this path: everything else under /api/ still needs a token
    assert api.get("/api/exercises").status_code == 401
    assert api.get("/api/openapi.json/x").status_code == 401


def participant_token(app) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    make_participant(app, "Olga OpenAPI", token=token)
    return token


def conforms(app, path: str, method: str, response, expected_status: int) -> None:
    """The response is one the description allows for this operation (Schemathesis's own checks)."""
    assert response.status_code == expected_status, response.get_data(as_text=True)[:500]
    operation = schemathesis.openapi.from_dict(openapi_document())[path][method]
    operation.Case(path_parameters=ANY_PARAMETERS).validate_response(response, checks=CHECKS)


SUBMIT = f"/api/exercises/{SLUG}/submissions"
SUBMIT_OP = "/api/exercises/{slug}/submissions"
HOSTILE_SUBMISSIONS = {
    # name: (request keyword arguments, expected status)
    "lone surrogate in the code": (
        {"data": '{"code": "x = \\"\\ud800\\"\\n"}', "content_type": "application/json"},
        400,
    ),
    "code that exhausts the parser": ({"json": {"code": "x = " + "-" * 100_000 + "1\n"}}, 400),
    "NUL in the code": ({"json": {"code": "x = 1\x00\n"}}, 400),
    "empty code": ({"json": {"code": "   "}}, 400),
    "code that is not a string": ({"json": {"code": 5}}, 400),
    "a JSON list": ({"json": [1, 2]}, 400),
    "broken JSON": ({"data": b'{"code": "x', "content_type": "application/json"}, 400),
    "JSON that is not UTF-8": ({"data": b'{"code": "\xff"}', "content_type": "application/json"}, 400),
    "raw body that is not UTF-8": ({"data": b"x = '\xff'\n", "content_type": "application/octet-stream"}, 400),
    "an upload not ending in .py": ({"data": {"file": (b"x = 1\n", "x.txt")}}, 400),
    "a body over the size limit": ({"data": b"#" * (2 * 1024 * 1024), "content_type": "text/plain"}, 413),
}


@pytest.mark.parametrize("name", HOSTILE_SUBMISSIONS)
def test_hostile_submissions_get_documented_errors(app, name):
    token = participant_token(app)
    kwargs, status = HOSTILE_SUBMISSIONS[name]
    if isinstance(kwargs.get("data"), dict):  # a file: a fresh stream for every run
        kwargs = {"data": {key: (io.BytesIO(content), filename) for key, (content, filename) in kwargs["data"].items()}}
    api = app.test_client(use_cookies=False)
    response = api.post(SUBMIT, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    conforms(app, SUBMIT_OP, "POST", response, status)
    assert response.get_json()["error"]["status"] == status


ODD_FILENAMES = {
    "lone surrogate": ('"x\\udc80y.py"', "xy.py"),
    "NUL and controls": ('"a\\u0000b\\u001b[31mc\\n.py"', "ab[31mc.py"),
    "very long": (json.dumps("n" * 1000 + ".py"), ("n" * 1000 + ".py")[-255:]),
    "not a string": ("7", None),
}


@pytest.mark.parametrize("name", ODD_FILENAMES)
def test_odd_file_names_are_stored_cleaned(any_db_app, name):
    """The file name is only shown: what cannot be stored (on SQLite or PostgreSQL) or shown is dropped."""
    token = participant_token(any_db_app)
    raw, stored = ODD_FILENAMES[name]
    api = any_db_app.test_client(use_cookies=False)
    body = '{"code": "def train(data):\\n    return None\\n", "filename": %s}' % raw  # noqa: UP031 - raw JSON
    response = api.post(
        SUBMIT, data=body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )
    conforms(any_db_app, SUBMIT_OP, "POST", response, 201)
    with new_session(any_db_app) as db:
        assert db.scalar(select(Submission.filename)) == stored


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/submissions/1", 404),
        ("/api/submissions/0", 404),
        ("/api/submissions/-1", 404),
        ("/api/submissions/2147483648", 404),
        ("/api/submissions/99999999999999999999999", 404),
        ("/api/submissions/1e3", 404),
        ("/api/exercises/%00/submissions", 404),
        ("/api/leaderboard/%ED%A0%80", 404),
        ("/api/leaderboard/" + "x" * 5000, 404),
    ],
)
def test_odd_paths_are_documented_not_found(app, path, status):
    token = participant_token(app)
    api = app.test_client(use_cookies=False)
    response = api.get(path, headers={"Authorization": f"Bearer {token}"})
    operation = "/api/leaderboard/{slug}" if "leaderboard" in path else "/api/submissions/{submission_id}"
    operation = SUBMIT_OP if "exercises" in path else operation
    conforms(app, operation, "GET", response, status)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic abc", f"bearer {TOKEN_PREFIX}{'0' * 43}"])
def test_missing_or_wrong_tokens_get_a_documented_401(app, header):
    api = app.test_client(use_cookies=False)
    response = api.get("/api/exercises", headers={"Authorization": header} if header else {})
    conforms(app, "/api/exercises", "GET", response, 401)


def test_a_finished_submission_and_the_leaderboard_match_the_description(any_db_app):
    """The shapes the fuzzer never sees without a worker: a scored submission, a filled leaderboard."""
    token = participant_token(any_db_app)
    api = any_db_app.test_client(use_cookies=False)
    headers = {"Authorization": f"Bearer {token}"}
    created = api.post(SUBMIT, json={"code": TRAIN, "filename": "nb.py"}, headers=headers)
    conforms(any_db_app, SUBMIT_OP, "POST", created, 201)
    with new_session(any_db_app) as db:
        row = db.get(Submission, created.get_json()["id"])
        row.status, row.public_score, row.private_score, row.seconds = "done", 0.75, 0.7, 12.5
        row.metrics = {"public": {"roc_auc": 0.75}, "private": {"roc_auc": 0.7}}
        row.history = [{"epoch": 1, "loss": 0.6, "val_auc": 0.7}]
        row.notes, row.log, row.finished_at = ["a note"], "epoch 1\n", utcnow()
        failed = Submission(
            participant_id=row.participant_id,
            exercise_slug=SLUG,
            dataset="synthetic",
            code=TRAIN,
            status="failed",
            error_kind="runtime_error",
            error_message="boom",
            traceback="Traceback ...",
        )
        db.add(failed)
        db.commit()
        ids = row.id, failed.id
    for submission_id in ids:
        response = api.get(f"/api/submissions/{submission_id}", headers=headers)
        conforms(any_db_app, "/api/submissions/{submission_id}", "GET", response, 200)
    listed = api.get(f"/api/exercises/{SLUG}/submissions", headers=headers)
    conforms(any_db_app, SUBMIT_OP, "GET", listed, 200)
    assert [row["id"] for row in listed.get_json()["submissions"]] == sorted(ids, reverse=True)
    board = api.get(f"/api/leaderboard/{SLUG}", headers=headers)
    conforms(any_db_app, "/api/leaderboard/{slug}", "GET", board, 200)
    assert [row["display_name"] for row in board.get_json()["rows"]] == ["Olga OpenAPI"]
    exercises = api.get("/api/exercises", headers=headers)
    conforms(any_db_app, "/api/exercises", "GET", exercises, 200)


def test_a_response_outside_the_description_is_caught(app):
    """The checks used above do fail on an undocumented status or shape (so passing them means something)."""
    api = app.test_client(use_cookies=False)
    response = api.get("/api/exercises")  # 401, documented for this operation but not as a 200 body
    operation = schemathesis.openapi.from_dict(openapi_document())["/api/exercises"]["GET"]
    response.status_code = 404  # an undocumented status for this operation
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        operation.Case(path_parameters=ANY_PARAMETERS).validate_response(response, checks=CHECKS)
    response.status_code = 200  # documented, but the body is an error, not {"exercises": [...]}
    with pytest.raises(FailureGroup, match="Response violates schema"):
        operation.Case(path_parameters=ANY_PARAMETERS).validate_response(response, checks=CHECKS)


def test_method_not_allowed_names_the_allowed_methods(app):
    """RFC 9110: a 405 carries Allow (Schemathesis's unsupported_method check asks for it)."""
    token = participant_token(app)
    api = app.test_client(use_cookies=False)
    response = api.delete("/api/exercises", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405 and response.get_json()["error"]["status"] == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
