"""Fair turns: which queued job a free slot takes next, each job's place in the queue and when it should start.

The next job is the queued one whose participant used the least slot time in the last hour (running jobs
count what they used so far); ties go to the oldest job. The ETA replays that order on the working slots,
each job taking the median run time of recent finished jobs of its exercise.
"""

from __future__ import annotations

import heapq
import statistics
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from server.models import Submission, WorkerSlot, utcnow

USAGE_WINDOW = timedelta(hours=1)
SLOT_ALIVE_SECONDS = 120  # a slot that reported within this long counts as working
DEFAULT_RUN_SECONDS = 60.0  # an exercise with no finished job yet
RECENT_JOBS = 20


def usage_by_participant(db, now: datetime) -> dict[int, float]:
    """Slot seconds each participant used in the last hour: finished jobs' run time, running jobs' time so far."""
    rows = db.execute(
        select(Submission.participant_id, Submission.status, Submission.seconds, Submission.started_at)
        .where(Submission.started_at >= now - USAGE_WINDOW)
        .where(Submission.status.in_(("running", "done", "failed", "cancelled")))
    ).all()
    used: dict[int, float] = defaultdict(float)
    for participant_id, status, seconds, started_at in rows:
        if status == "running" or seconds is None:
            seconds = max(0.0, (now - started_at).total_seconds()) if status == "running" else 0.0
        used[participant_id] += float(seconds)
    return used


@dataclass(frozen=True)
class QueuedJob:
    id: int
    participant_id: int
    exercise_slug: str
    created_at: datetime
    ready: bool
    priority: int = 0  # below 0: the instructor's reruns, after everyone's own jobs


def queued_jobs(db, now: datetime) -> list[QueuedJob]:
    rows = db.execute(
        select(
            Submission.id,
            Submission.participant_id,
            Submission.exercise_slug,
            Submission.created_at,
            or_(Submission.not_before.is_(None), Submission.not_before <= now),
            Submission.priority,
        ).where(Submission.status == "queued")
    ).all()
    return [QueuedJob(*row) for row in rows]


def fair_order(db, now: datetime | None = None, ready_only: bool = False) -> list[int]:
    """Queued submission ids in the order slots take them (``ready_only``: leave out retries still waiting)."""
    now = now or utcnow()
    return [job.id for job in _ordered(db, now) if job.ready or not ready_only]


def _ordered(db, now: datetime) -> list[QueuedJob]:
    used = usage_by_participant(db, now)
    jobs = queued_jobs(db, now)
    # a participant's later jobs wait behind their first: count each queued job's expected share too
    jobs.sort(key=lambda job: (job.created_at, job.id))
    seen: dict[int, int] = defaultdict(int)
    keyed = []
    for job in jobs:
        turn = (-job.priority, seen[job.participant_id], used.get(job.participant_id, 0.0), job.created_at, job.id)
        keyed.append((turn, job))
        seen[job.participant_id] += 1
    return [job for _key, job in sorted(keyed, key=lambda pair: pair[0])]


def median_run_seconds(db, slug: str, window: int = RECENT_JOBS) -> float | None:
    seconds = db.scalars(
        select(Submission.seconds)
        .where(Submission.exercise_slug == slug, Submission.status == "done", Submission.seconds.is_not(None))
        .order_by(Submission.finished_at.desc())
        .limit(window)
    ).all()
    return statistics.median(seconds) if seconds else None


def working_slots(db, now: datetime) -> int:
    """Slots that reported recently and are not paused or dead."""
    since = now - timedelta(seconds=SLOT_ALIVE_SECONDS)
    rows = db.scalars(select(WorkerSlot.state).where(WorkerSlot.heartbeat_at >= since)).all()
    return sum(1 for state in rows if state in ("idle", "busy"))


@dataclass(frozen=True)
class QueuePlace:
    position: int  # 1: the next job a free slot takes
    ahead: int
    eta: datetime | None  # None: no working slot, nobody can say
    slots: int


def queue_places(db, now: datetime | None = None, window: int = RECENT_JOBS) -> dict[int, QueuePlace]:
    """Every queued job's place and expected start, replaying the fair order on the working slots."""
    now = now or utcnow()
    order = _ordered(db, now)
    slots = working_slots(db, now)
    medians: dict[str, float] = {}

    def run_time(slug: str) -> float:
        if slug not in medians:
            medians[slug] = median_run_seconds(db, slug, window) or DEFAULT_RUN_SECONDS
        return medians[slug]

    running = db.execute(
        select(Submission.exercise_slug, Submission.started_at).where(Submission.status == "running")
    ).all()
    # when each slot is free again: running jobs end after their exercise's median (at least now)
    free_at = sorted(max(0.0, run_time(slug) - (now - (started or now)).total_seconds()) for slug, started in running)[
        :slots
    ]
    free_at += [0.0] * (slots - len(free_at))
    heapq.heapify(free_at)
    places = {}
    for position, job in enumerate(order, start=1):
        eta = None
        if slots:
            start = heapq.heappop(free_at)
            heapq.heappush(free_at, start + run_time(job.exercise_slug))
            eta = now + timedelta(seconds=start)
        places[job.id] = QueuePlace(position, position - 1, eta, slots)
    return places


QUEUE_CACHE_SECONDS = 1.0  # pages, streams and the API share one replay of the queue this long
_cache: dict[object, tuple[float, dict[int, QueuePlace]]] = {}
_cache_lock = threading.Lock()


def queue_place(db, submission_id: int, now: datetime | None = None) -> QueuePlace | None:
    """One queued job's place. Every open page and stream asks every few seconds: without ``now``, the replay of
    the whole queue is shared for QUEUE_CACHE_SECONDS per database (a job queued since is never left out)."""
    if now is not None:
        return queue_places(db, now).get(submission_id)
    key, moment = db.get_bind().url, time.monotonic()
    with _cache_lock:
        made, places = _cache.get(key, (0.0, {}))
    if submission_id in places and moment - made < QUEUE_CACHE_SECONDS:
        return places[submission_id]
    places = queue_places(db)
    with _cache_lock:
        _cache[key] = (moment, places)
    return places.get(submission_id)
