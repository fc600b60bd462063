"""The projector view: a full-screen public board for the room, pushed by server-sent events, with the join QR code."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request

from server.catalog import catalog
from server.errors import NotFound
from server.projector_feed import (
    app_snapshot,
    client_gone,
    event_stream,
    feed_timing,
    join_url,
    qr_data_uri,
    stream_slots,
)

bp = Blueprint("projector", __name__)


@bp.route("/projector")
def show():
    """``?exercise=<slug>`` stays on one exercise; without it the page rotates through them."""
    stay = request.args.get("exercise") or None
    if stay is not None and stay not in catalog():
        raise NotFound(f"There is no exercise called {stay!r}.")
    url = join_url(current_app, request.host_url)
    return render_template("projector/show.html", stay=stay or "", join_url=url, qr=qr_data_uri(url))


@bp.route("/projector/snapshot.json")
def snapshot_json():
    return jsonify(app_snapshot(current_app._get_current_object(), join_url(current_app, request.host_url)))


@bp.route("/projector/feed")
def feed():
    """``text/event-stream`` of snapshots. Participants share a few streams (each holds a request thread); past
    them the page falls back to polling snapshot.json. The instructor's projector always gets one."""
    app = current_app._get_current_object()
    slots = stream_slots(app)
    counted = not g.is_instructor
    if counted and not slots.take():
        return Response("Too many projector streams; poll /projector/snapshot.json.", 503, {"Retry-After": "30"})
    gone = client_gone(request.environ.get("gunicorn.socket"))
    body = event_stream(app, join_url(app, request.host_url), feed_timing(app), gone=gone)
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    if counted:
        response.call_on_close(slots.give_back)
    return response
