"""Fair turns: the next job is the one of whoever used the least slot time in the last hour; position and ETA."""

from __future__ import annotations

from datetime import timedelta

from factories import make_participant, make_submission

from server.db import new_session
from server.fair_queue import fair_order, queue_places
from server.job_store import DatabaseJobStore
from server.models import WorkerSlot, utcnow


def _slot(app, name: str, state: str = "idle") -> None:
    with new_session(app) as db:
        db.add(WorkerSlot(name=name, state=state, heartbeat_at=utcnow()))
        db.commit()


def test_the_participant_who_used_least_goes_first_ties_to_the_oldest(any_db_app):
    app = any_db_app
    now = utcnow()
    eager, light, fresh, late = (make_participant(app, name) for name in ("Eager", "Light", "Fresh", "Late"))
    # Eager used 10 minutes of slot time this hour, Light 1 minute; Fresh and Late nothing yet
    make_submission(app, eager, status="done", started_at=now - timedelta(minutes=30), seconds=600, public_score=0.5)
    make_submission(app, light, status="done", started_at=now - timedelta(minutes=30), seconds=60, public_score=0.5)
    # slot time used more than an hour ago does not count
    make_submission(app, late, status="done", started_at=now - timedelta(minutes=90), seconds=3000, public_score=0.5)
    first = make_submission(app, eager, created_at=now - timedelta(minutes=5))
    second = make_submission(app, light, created_at=now - timedelta(minutes=4))
    third = make_submission(app, fresh, created_at=now - timedelta(minutes=2))
    fourth = make_submission(app, late, created_at=now - timedelta(minutes=1))
    with new_session(app) as db:
        assert fair_order(db, now) == [third, fourth, second, first]
    store = DatabaseJobStore(app)
    claimed = [store.claim_next_job("test-worker", 60).submission_id for _ in range(4)]
    assert claimed == [third, fourth, second, first]
    assert store.claim_next_job("test-worker", 60) is None


def test_a_participants_second_queued_job_waits_behind_everyone_elses_first(app):
    now = utcnow()
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    ada_1 = make_submission(app, ada, created_at=now - timedelta(minutes=3))
    ada_2 = make_submission(app, ada, created_at=now - timedelta(minutes=2))
    bob_1 = make_submission(app, bob, created_at=now - timedelta(minutes=1))
    with new_session(app) as db:
        assert fair_order(db, now) == [ada_1, bob_1, ada_2]


def test_running_jobs_count_the_time_they_used_so_far(app):
    now = utcnow()
    busy, idle = make_participant(app, "Busy"), make_participant(app, "Idle")
    make_submission(app, busy, status="running", started_at=now - timedelta(minutes=3))
    busy_next = make_submission(app, busy, created_at=now - timedelta(minutes=5))
    idle_next = make_submission(app, idle, created_at=now - timedelta(minutes=1))
    with new_session(app) as db:
        assert fair_order(db, now) == [idle_next, busy_next]


def test_positions_and_etas_replay_the_order_on_the_working_slots(app):
    now = utcnow()
    people = [make_participant(app, f"P{index}") for index in range(5)]
    # the median of the exercise's recent run times is 100 s
    for seconds in (90, 100, 110):
        make_submission(
            app,
            people[0],
            status="done",
            seconds=seconds,
            public_score=0.5,
            started_at=now - timedelta(hours=2),
            finished_at=now - timedelta(hours=2),
        )
    queued = [
        make_submission(app, person, created_at=now - timedelta(minutes=10 - i)) for i, person in enumerate(people)
    ]
    with new_session(app) as db:
        assert all(place.eta is None for place in queue_places(db, now).values()), "no working slot: no ETA"
    _slot(app, "host:1:slot-0")
    _slot(app, "host:1:slot-1", state="busy")
    _slot(app, "host:1:slot-2", state="paused")  # a paused slot takes no job
    with new_session(app) as db:
        places = queue_places(db, now)
    assert [places[job].position for job in queued] == [1, 2, 3, 4, 5]
    starts = [round((places[job].eta - now).total_seconds()) for job in queued]
    assert starts == [0, 0, 100, 100, 200]
    assert {place.slots for place in places.values()} == {2}


def test_the_instructors_reruns_wait_behind_everyones_own_jobs_and_cost_no_quota(app):
    from grader.exercises import Quota
    from server.quotas import quota_status

    now = utcnow()
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    rerun = make_submission(app, ada, created_at=now - timedelta(minutes=9), priority=-1, charged=False)
    own = make_submission(app, bob, created_at=now - timedelta(minutes=1))
    with new_session(app) as db:
        assert fair_order(db, now) == [own, rerun]
        assert quota_status(db, ada, "cnn-from-scratch", Quota(2, 3600), now).used == 0


def test_pages_and_streams_share_one_replay_of_the_queue_and_a_new_job_is_never_left_out(app, monkeypatch):
    """Every open submission page asks for its place every few seconds: one replay serves them for a second."""
    from server import fair_queue

    replays = []
    real = fair_queue.queue_places
    monkeypatch.setattr(fair_queue, "queue_places", lambda db, now=None: replays.append(1) or real(db, now))
    monkeypatch.setattr(fair_queue, "QUEUE_CACHE_SECONDS", 60)
    people = [make_participant(app, f"P{number}") for number in range(3)]
    first, second = (make_submission(app, person) for person in people[:2])
    with new_session(app) as db:
        assert [fair_queue.queue_place(db, job).position for job in (first, second, first, second)] == [1, 2, 1, 2]
        assert len(replays) == 1
        third = make_submission(app, people[2])  # queued after the replay: replayed again, not "not queued"
        assert fair_queue.queue_place(db, third).position == 3 and len(replays) == 2
    monkeypatch.setattr(fair_queue, "QUEUE_CACHE_SECONDS", 0)
    with new_session(app) as db:
        fair_queue.queue_place(db, first)
        assert len(replays) == 3
