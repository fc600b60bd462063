"""The worker API: remote workers (``workshop worker --server URL --token TOKEN``) fetch public data, claim
jobs, report and upload here, with a worker token (``Authorization: Bearer wt_...``) and never a cookie, so
no CSRF token is needed. Wrong tokens are counted per address like wrong notebook tokens. Every job route is
conditional on the claim token the claim returned (server/worker_api.py).
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, send_file

from grader.remote_run import MAX_UPLOAD_BYTES
from server import worker_api
from server.access import Unauthorized, bearer_token
from server.db import get_db
from server.errors import WorkshopError
from server.login_guard import client_address, refused, settle, take_tickets, too_many
from server.throttle import wait_words
from server.worker_tokens import worker_for_token

bp = Blueprint("worker_api", __name__, url_prefix="/worker-api/v1")
MAX_JOB_ID = 2**31 - 1


@bp.before_request
def authenticate():
    """The worker whose valid token the request carries; wrong tokens count against the address."""
    worker = worker_for_token(get_db(), bearer_token())
    if worker is None:
        tickets = take_tickets(("token", client_address()))
        if refused(tickets):
            too_many(f"Too many wrong tokens from your address. Wait {wait_words(tickets[-1].retry_after)}.", 60)
        settle(tickets, ok=False)
        raise Unauthorized("Send a valid worker token as 'Authorization: Bearer <token>' (workshop worker-token).")
    g.worker_name = worker.name


def body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise WorkshopError("Send a JSON object.")
    return data


def job_of(submission_id: int):
    if not 0 < submission_id <= MAX_JOB_ID:
        raise WorkshopError("No such job.")
    return worker_api.claimed(submission_id, body().get("token"))


@bp.get("/datasets/<name>")
def dataset(name: str):
    return jsonify(worker_api.dataset_manifest(current_app, name))


@bp.get("/datasets/<name>/public/<file>")
def dataset_file(name: str, file: str):
    return send_file(worker_api.public_file(current_app, name, file), mimetype="application/octet-stream")


@bp.get("/weights")
def weights():
    return jsonify(worker_api.weights_manifest(current_app))


@bp.get("/weights/<file>")
def weights_file(file: str):
    return send_file(worker_api.weights_file(current_app, file), mimetype="application/octet-stream")


@bp.post("/claim")
def claim():
    slot = body().get("slot")
    if not isinstance(slot, str) or not slot:
        raise WorkshopError("Send {slot: the slot's name}.")
    return jsonify(job=worker_api.claim(current_app, g.worker_name, slot))


@bp.post("/jobs/<int:submission_id>/lease")
def lease(submission_id: int):
    return jsonify(ok=worker_api.renew(current_app, job_of(submission_id)))


@bp.post("/jobs/<int:submission_id>/progress")
def progress(submission_id: int):
    worker_api.progress(current_app, job_of(submission_id), body())
    return jsonify(ok=True)


@bp.post("/jobs/<int:submission_id>/result")
def result(submission_id: int):
    request.max_content_length = MAX_UPLOAD_BYTES  # the sandbox's files, gzipped (size-checked again)
    job = job_of(submission_id)
    try:
        recorded = worker_api.record_upload(current_app, job, body().get("output"))
    except ValueError as error:  # BadOutput: what the worker sent is not a sandbox output
        raise WorkshopError(f"The uploaded output is malformed: {error}") from None
    return jsonify(recorded=recorded)


@bp.post("/jobs/<int:submission_id>/failure")
def failure(submission_id: int):
    return jsonify(recorded=worker_api.record_failure(current_app, job_of(submission_id), body()))


@bp.post("/jobs/<int:submission_id>/release")
def release(submission_id: int):
    worker_api.release(current_app, job_of(submission_id))
    return jsonify(ok=True)


@bp.post("/slots")
def slot():
    worker_api.report_slot(current_app, g.worker_name, body())
    return jsonify(ok=True)
