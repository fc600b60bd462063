"""What the projector shows, as one JSON snapshot, and the server-sent event stream that pushes it when it changes.

The projector is on a wall: it always shows the public view (build_board(..., instructor=False)), frozen during a
freeze and private only after a reveal, whoever is logged in on the laptop that drives it.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import segno
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from grader.exercises import Exercise
from server.boards import build_board, queue_length
from server.catalog import catalog
from server.db import new_session
from server.event import announcement, exercise_json, frozen_at
from server.models import utcnow
from server.submissions import iso_utc

log = logging.getLogger(__name__)

_cache_lock = threading.Lock()
ROWS_SHOWN = 12  # rows a room can read from the back; the reveal plays these from the last to the first


@dataclass(frozen=True)
class FeedTiming:
    poll_seconds: float = 0.5  # how often the stream looks for a change
    keepalive_seconds: float = 15.0  # a comment line keeps proxies and the browser from dropping an idle stream
    max_seconds: float = 3600.0  # then the stream ends and EventSource reconnects by itself


def join_url(app: Flask, host_url: str) -> str:
    """The URL on the slide: WORKSHOP_PUBLIC_URL (e.g. a short link), else the address the server is reached at."""
    return app.config.get("PUBLIC_URL") or host_url.rstrip("/") + "/join"


def qr_data_uri(url: str) -> str:
    """The QR code of ``url`` as an SVG data URI for an <img> (the page's CSP allows data: images)."""
    return segno.make(url, error="m").svg_data_uri(scale=10, border=2, dark="#000", light="#fff")


def exercise_entry(db, exercise: Exercise, now: datetime) -> dict:
    state = exercise_json(db, exercise, None, now)
    board = build_board(db, exercise, instructor=False, now=now).as_json()
    return {
        "slug": exercise.slug,
        "title": exercise.title,
        "deadline": state["deadline"],
        "open": state["open"],
        "board": {**board, "rows": board["rows"][:ROWS_SHOWN], "total_rows": len(board["rows"])},
    }


def snapshot(db, exercises: list[Exercise], url: str, now: datetime | None = None) -> dict:
    """Everything the projector shows now: each exercise's public board, the queue, announcement, freeze, join URL."""
    now = now or utcnow()
    freeze = frozen_at(db, now)
    return {
        "join_url": url,
        "queue_length": queue_length(db),
        "announcement": announcement(db),
        "frozen": freeze is not None,
        "frozen_at": iso_utc(freeze) if freeze else None,
        "exercises": [exercise_entry(db, exercise, now) for exercise in exercises],
    }


def app_snapshot(app: Flask, url: str) -> dict:
    """A snapshot read in a database session of its own, closed before returning (no request session is held).

    Streams and polling pages share one snapshot per PROJECTOR_CACHE_SECONDS (0.4 s): a room
    of pages costs one set of board queries per poll, not one each."""
    max_age = app.config["PROJECTOR_CACHE_SECONDS"]
    cache = app.extensions.setdefault("projector_snapshots", {})
    with _cache_lock:
        made, body = cache.get(url, (float("-inf"), None))
        if time.monotonic() - made < max_age:
            return body
    with app.app_context(), new_session(app) as db:
        body = snapshot(db, list(catalog(app).values()), url)
    with _cache_lock:
        if len(cache) >= 16:  # the URL follows the Host header: never let it grow the cache
            cache.clear()
        cache[url] = (time.monotonic(), body)
    return body


def event_stream(
    app: Flask,
    url: str,
    timing: FeedTiming,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    gone: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """``data: <snapshot>`` when the snapshot changed, ``: keepalive`` when idle, for ``timing.max_seconds`` or
    until the browser is ``gone`` (its request thread is free at once, not at the next failed write)."""
    started = last_write = clock()
    last_body = None
    yield "retry: 3000\n\n"  # the browser reconnects 3 s after the stream ends or breaks
    while True:
        try:
            body = json.dumps(app_snapshot(app, url), sort_keys=True, separators=(",", ":"))
        except SQLAlchemyError:
            log.warning("projector feed: the database did not answer; trying again", exc_info=True)
            body = last_body
        now = clock()
        if body != last_body:
            yield f"data: {body}\n\n"
            last_body, last_write = body, now
        elif now - last_write >= timing.keepalive_seconds:
            yield ": keepalive\n\n"
            last_write = now
        if now - started >= timing.max_seconds or gone():
            return
        sleep(timing.poll_seconds)


def client_gone(connection: socket.socket | None) -> Callable[[], bool]:
    """Whether the browser closed the connection (gunicorn passes its socket as ``gunicorn.socket``): readable
    with nothing to read is the end of the stream. Without a socket, the next failed write ends the stream."""

    def gone() -> bool:
        if connection is None:
            return False
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return bool(readable) and connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    return gone


class StreamSlots:
    """At most ``limit`` open streams at once: each holds one of the web server's request threads for an hour."""

    def __init__(self, limit: int) -> None:
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give_back(self) -> None:
        self._free.release()


_slots_lock = threading.Lock()


def stream_slots(app: Flask) -> StreamSlots:
    with _slots_lock:
        if "projector_streams" not in app.extensions:
            app.extensions["projector_streams"] = StreamSlots(app.config["PROJECTOR_MAX_STREAMS"])
        return app.extensions["projector_streams"]


def feed_timing(app: Flask) -> FeedTiming:
    """The stream's timing (PROJECTOR_STREAM_SECONDS 0: one snapshot, then the stream ends)."""
    return FeedTiming(
        poll_seconds=app.config["PROJECTOR_POLL_SECONDS"], max_seconds=app.config["PROJECTOR_STREAM_SECONDS"]
    )
