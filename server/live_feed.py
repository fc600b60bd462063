"""The submission page's server-sent events: status, queue place, log lines and epochs as the worker writes them,
then the verdict, and the stream ends.

The stream reads the submission's row in a database session of its own every SUBMISSION_POLL_SECONDS (0.25 s)
and sends only what changed: ``status`` (with the queue place while queued and the elapsed seconds while running),
``log`` (the new lines, or the whole tail when the worker's window slid), ``epochs`` (the training curves and the
per-epoch table as an HTML fragment, drawn on the server) and ``verdict``. Who may open it is checked by the view
(server.submissions.visible_submission) before the first byte; nothing here is private (no metric is sent: the
page fetches the verdict itself). Streams are limited like the projector's (server/projector_feed.StreamSlots);
past the limit the page polls /submissions/<id>.json.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from server.db import new_session
from server.fair_queue import queue_place
from server.figures import curve_svgs
from server.models import TERMINAL_STATUSES, Submission, utcnow
from server.projector_feed import StreamSlots
from server.submissions import iso_utc

log = logging.getLogger(__name__)

LOG_ANCHOR_CHARS = 80  # the end of the log the browser has, looked for in the new tail when the window slid
_slots_lock = threading.Lock()


@dataclass(frozen=True)
class LiveTiming:
    poll_seconds: float = 0.25  # how often the stream reads the row
    queue_seconds: float = 2.0  # the queue place (which replays the fair order) at most this often
    keepalive_seconds: float = 15.0
    max_seconds: float = 600.0  # then the stream ends and EventSource reconnects by itself


def live_timing(app: Flask) -> LiveTiming:
    """SUBMISSION_STREAM_SECONDS 0: one round of events, then the stream ends (tests read whole bodies)."""
    return LiveTiming(
        poll_seconds=app.config["SUBMISSION_POLL_SECONDS"], max_seconds=app.config["SUBMISSION_STREAM_SECONDS"]
    )


def live_slots(app: Flask) -> StreamSlots:
    with _slots_lock:
        if "submission_streams" not in app.extensions:
            app.extensions["submission_streams"] = StreamSlots(app.config["SUBMISSION_MAX_STREAMS"])
        return app.extensions["submission_streams"]


def curves_fragment(app: Flask, history: list | None, key: str = "curves") -> str:
    """The per-epoch part of the page (pictures and table), as the page itself includes it."""
    template = app.jinja_env.get_template("submissions/_curves.html")
    return template.render(history=history or [], curves=curve_svgs(history or [], key))


def elapsed_seconds(started_at) -> float | None:
    return None if started_at is None else max(0.0, (utcnow() - started_at).total_seconds())


def log_change(old: str | None, new: str) -> dict | None:
    """``{"append": text}`` when the log grew at its end, ``{"replace": text}`` otherwise, None when unchanged.

    ``old`` None: the stream's first look, whose log replaces what the page has (it may have been open a while).
    The worker keeps the last 20,000 characters: once the window slides, the browser's end (an anchor found
    exactly once in the new tail) says where its new lines start; ``keep`` is the length of the window."""
    if old is None:
        return {"replace": new} if new else None
    if new == old:
        return None
    if new.startswith(old):
        return {"append": new[len(old) :]}
    anchor = old[-LOG_ANCHOR_CHARS:]
    if len(anchor) == LOG_ANCHOR_CHARS and new.count(anchor) == 1:
        return {"append": new[new.index(anchor) + len(anchor) :], "keep": len(new)}
    return {"replace": new}


@dataclass
class Seen:
    """What this stream has already sent."""

    status: dict | None = None
    log: str | None = None
    history: str = "[]"
    queue: dict = field(default_factory=lambda: {"queue_position": None, "eta": None})
    queue_read: float = float("-inf")


def message(kind: str, data: dict) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class LiveFeed:
    """One browser's stream of one submission's changes."""

    def __init__(self, app: Flask, submission_id: int, timing: LiveTiming, clock: Callable[[], float]):
        self.app, self.submission_id, self.timing, self.clock = app, submission_id, timing, clock
        self.seen = Seen()

    def changes(self) -> tuple[list[str], bool]:
        """The events for what changed since the last call, and whether the verdict is among them."""
        with new_session(self.app) as db:
            row = db.execute(
                select(Submission.status, Submission.log, Submission.history, Submission.started_at).where(
                    Submission.id == self.submission_id
                )
            ).first()
            if row is None:  # deleted meanwhile (a reset): nothing more will come
                return [message("verdict", {"status": "deleted"})], True
            queue = self._queue(db, row.status)
        events = []
        status = {"status": row.status, **queue}
        if status != self.seen.status:  # the elapsed time goes with a change; the page's clock ticks on
            running = {"elapsed": round(elapsed_seconds(row.started_at) or 0.0, 1)} if row.status == "running" else {}
            events.append(message("status", status | running))
            self.seen.status = status
        if change := log_change(self.seen.log, row.log or ""):
            events.append(message("log", change))
        self.seen.log = row.log or ""
        history = json.dumps(row.history or [], sort_keys=True)
        if history != self.seen.history:
            html = curves_fragment(self.app, row.history)
            events.append(message("epochs", {"count": len(row.history or []), "html": html}))
            self.seen.history = history
        terminal = row.status in TERMINAL_STATUSES
        if terminal:
            events.append(message("verdict", {"status": row.status}))
        return events, terminal

    def _queue(self, db, status: str) -> dict:
        if status != "queued":
            return {"queue_position": None, "eta": None}
        now = self.clock()
        if now - self.seen.queue_read >= self.timing.queue_seconds:
            place = queue_place(db, self.submission_id)
            eta = iso_utc(place.eta) if place and place.eta else None
            self.seen.queue = {"queue_position": place.position if place else None, "eta": eta}
            self.seen.queue_read = now
        return self.seen.queue


def event_stream(
    app: Flask,
    submission_id: int,
    timing: LiveTiming,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    gone: Callable[[], bool] = lambda: False,
) -> Iterator[str]:
    """Events while something changes, ``: keepalive`` when idle; ends after the verdict, after
    ``timing.max_seconds`` or when the browser is ``gone``."""
    feed = LiveFeed(app, submission_id, timing, clock)
    started = last_write = clock()
    yield "retry: 2000\n\n"  # the browser reconnects 2 s after the stream ends or breaks
    while True:
        try:
            with app.app_context():
                events, finished = feed.changes()
        except SQLAlchemyError:
            log.warning("submission feed: the database did not answer; trying again", exc_info=True)
            events, finished = [], False
        now = clock()
        if events:
            yield "".join(events)
            last_write = now
        elif now - last_write >= timing.keepalive_seconds:
            yield ": keepalive\n\n"
            last_write = now
        if finished or now - started >= timing.max_seconds or gone():
            return
        sleep(timing.poll_seconds)
