"""The event's pages over HTTP: the instructor's controls (/instructor/event), the exercise page's state and
quota, the refused submit that keeps the code, and marking submissions final (page and API)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import csrf_token, instructor_login, login_client, make_participant, make_submission

from grader.exercises import Quota
from server.catalog import catalog
from server.db import new_session
from server.event import exercise_state, frozen_at, set_open, set_quota
from server.models import EventSettings, QuotaGrant, Submission, utcnow

SLUG = "cnn-from-scratch"
TOKEN = "ada-notebook-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVENT = "/instructor/event/"


def _state(app, slug=SLUG):
    with new_session(app) as db:
        return exercise_state(db, catalog(app)[slug])


def _instructor(app):
    client = app.test_client()
    instructor_login(client)
    return client


def _post(client, path: str, data: dict):
    return client.post(EVENT + path, data={"csrf_token": csrf_token(client, EVENT), **data})


def test_the_event_page_shows_the_state_and_is_linked_from_the_overview(app):
    client = _instructor(app)
    assert 'href="/instructor/event/"' in client.get("/instructor/").get_data(as_text=True)
    page = client.get(EVENT).get_data(as_text=True)
    for slug in catalog(app):
        assert f'id="exercise-{slug}"' in page
    assert "Freeze now" in page and "Announce" in page and 'type="datetime-local"' in page


def test_every_instructor_action_changes_the_event_and_flashes(app):
    make_participant(app, "Nora")
    client = _instructor(app)
    response = _post(client, "open", {"slug": SLUG, "open": "0"})
    assert response.status_code == 302 and _state(app).open is False
    assert "submissions closed" in client.get(EVENT).get_data(as_text=True)
    _post(client, "open", {"slug": "*", "open": "1"})
    assert all(_state(app, slug).open for slug in catalog(app))
    _post(client, "open", {"slug": "*", "open": "0"})
    assert not any(_state(app, slug).open for slug in catalog(app))

    assert _post(client, "deadline", {"slug": SLUG, "when": "2030-01-02T15:30", "utc_offset": "60"}).status_code == 302
    assert _state(app).deadline.isoformat() == "2030-01-02T14:30:00"
    _post(client, "deadline", {"slug": SLUG, "clear": "1"})
    assert _state(app).deadline is None

    _post(client, "quota", {"slug": SLUG, "mode": "set", "count": "5", "per": "1h"})
    assert _state(app).quota == Quota(5, 3600)
    _post(client, "quota", {"slug": SLUG, "mode": "none"})
    assert _state(app).quota is None
    _post(client, "quota", {"slug": SLUG, "mode": "default"})
    assert _state(app).quota == catalog(app)[SLUG].quota

    _post(client, "grant", {"slug": SLUG, "display_name": "nora", "extra": "3"})
    with new_session(app) as db:
        assert [grant.extra for grant in db.query(QuotaGrant)] == [3]

    _post(client, "reveal", {"slug": SLUG, "reveal": "1"})
    assert _state(app).revealed
    _post(client, "reveal", {"slug": SLUG, "reveal": "0"})
    assert not _state(app).revealed

    _post(client, "freeze", {"what": "now"})
    with new_session(app) as db:
        assert frozen_at(db) is not None
    _post(client, "freeze", {"what": "at", "when": "+30m"})
    with new_session(app) as db:
        assert frozen_at(db) is None and db.get(EventSettings, 1).freeze_at > utcnow()
    _post(client, "freeze", {"what": "unfreeze"})
    with new_session(app) as db:
        assert db.get(EventSettings, 1).freeze_at is None

    _post(client, "announcement", {"text": "Pizza <b>now</b>"})
    page = client.get(EVENT).get_data(as_text=True)
    assert "Pizza &lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
    _post(client, "announcement", {"clear": "1"})
    with new_session(app) as db:
        assert db.get(EventSettings, 1).announcement is None


ACTIONS = [
    ("open", {"slug": SLUG, "open": "0"}),
    ("deadline", {"slug": SLUG, "when": "+1h"}),
    ("quota", {"slug": SLUG, "mode": "none"}),
    ("grant", {"slug": SLUG, "display_name": "Ada", "extra": "1"}),
    ("reveal", {"slug": SLUG, "reveal": "1"}),
    ("freeze", {"what": "now"}),
    ("announcement", {"text": "hello"}),
]


@pytest.mark.parametrize(("path", "data"), ACTIONS)
def test_a_participant_gets_403_and_changes_nothing(app, path, data):
    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    assert client.get(EVENT).status_code == 403
    token = csrf_token(client, f"/exercises/{SLUG}")
    assert client.post(EVENT + path, data={"csrf_token": token, **data}).status_code == 403
    assert _state(app).open and _state(app).deadline is None and not _state(app).revealed


@pytest.mark.parametrize(("path", "data"), ACTIONS)
def test_a_post_without_the_csrf_token_is_refused(app, path, data):
    client = _instructor(app)
    assert client.post(EVENT + path, data=data).status_code == 400
    assert _state(app).open and _state(app).deadline is None


BAD = [
    ("open", {"slug": "no-such", "open": "0"}, "no exercise called"),
    ("deadline", {"slug": SLUG, "when": "tomorrowish"}, "is not a time"),
    ("deadline", {"slug": SLUG, "when": "+forever"}, "not a duration"),
    ("deadline", {"slug": SLUG, "when": "15:30", "utc_offset": "east"}, "not a UTC offset"),
    ("quota", {"slug": SLUG, "mode": "set", "count": "five", "per": "1h"}, "whole number"),
    ("quota", {"slug": SLUG, "mode": "set", "count": "5", "per": "soon"}, "not a duration"),
    ("grant", {"slug": SLUG, "display_name": "Nobody", "extra": "2"}, "no participant called"),
    ("grant", {"slug": SLUG, "display_name": "Ada", "extra": "-1"}, "whole number"),
    ("freeze", {"what": "at", "when": "25:99"}, "not a time of day"),
    ("freeze", {"what": "sometime"}, "Choose freeze now"),
    ("announcement", {"text": "x" * 600}, "at most 500"),
]


@pytest.mark.parametrize(("path", "data", "message"), BAD)
def test_bad_input_is_a_clear_400_and_changes_nothing(app, path, data, message):
    make_participant(app, "Ada")
    client = _instructor(app)
    response = _post(client, path, data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    state = _state(app)
    assert state.open and state.deadline is None and state.quota == catalog(app)[SLUG].quota
    with new_session(app) as db:
        row = db.get(EventSettings, 1)
        assert row.freeze_at is None and row.announcement is None and db.query(QuotaGrant).count() == 0


def test_the_exercise_page_shows_the_quota_and_disables_the_button_when_none_is_left(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        set_quota(db, catalog(app)[SLUG], Quota(5, 3600))
    client = login_client(app, ada)
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert "5 of 5</strong> submissions left this hour" in page and "Submissions are open" in page
    first = utcnow() - timedelta(minutes=10)
    for minutes in range(5):
        make_submission(app, ada, status="done", public_score=0.7, created_at=first + timedelta(minutes=minutes))
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert "0 of 5</strong> submissions left this hour; the next frees up at" in page
    assert 'id="submit" disabled' in page and "You have used all 5 submissions allowed per hour" in page
    assert f'datetime="{(first + timedelta(hours=1)).replace(microsecond=0).isoformat()}' in page


def test_a_closed_exercise_disables_submit_and_shows_the_countdown_source(app):
    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    _post(_instructor(app), "deadline", {"slug": SLUG, "when": "+2h"})
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert 'class="countdown" data-deadline="' in page and "event.js" in page
    with new_session(app) as db:
        set_open(db, [catalog(app)[SLUG]], False)
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert "Submissions are closed" in page and 'id="submit" disabled' in page


def test_a_refused_submit_shows_the_message_and_keeps_the_code(app):
    ada = make_participant(app, "Ada")
    with new_session(app) as db:
        set_quota(db, catalog(app)[SLUG], Quota(1, 3600))
    make_submission(app, ada, status="done", public_score=0.7)
    client = login_client(app, ada)
    code = "def train(data):\n    return 'mine & <precious>'\n"
    token = csrf_token(client, f"/exercises/{SLUG}")
    response = client.post(f"/exercises/{SLUG}/submit", data={"csrf_token": token, "code": code})
    page = response.get_data(as_text=True)
    assert response.status_code == 429 and "You have used all 1 submissions allowed per hour" in page
    assert "return &#39;mine &amp; &lt;precious&gt;&#39;" in page
    with new_session(app) as db:
        set_open(db, [catalog(app)[SLUG]], False)
    response = client.post(f"/exercises/{SLUG}/submit", data={"csrf_token": token, "code": code})
    page = response.get_data(as_text=True)
    assert response.status_code == 403 and "Submissions to this exercise are closed." in page
    assert "mine &amp; &lt;precious&gt;" in page
    with new_session(app) as db:
        assert db.query(Submission).count() == 1


def _mark(client, submission_id: int, final: bool):
    token = csrf_token(client, f"/submissions/{submission_id}")
    return client.post(
        f"/submissions/{submission_id}/final", data={"csrf_token": token, "final": "1" if final else "0"}
    )


def _finals(app) -> set[int]:
    with new_session(app) as db:
        return {row.id for row in db.query(Submission).filter(Submission.final.is_(True))}


def test_final_marking_two_at_most_owner_only(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    ids = [make_submission(app, ada, status="done", public_score=score) for score in (0.6, 0.7, 0.8)]
    queued = make_submission(app, ada)
    client = login_client(app, ada)
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert "your 2 best public scores count" in page and page.count("counts (best)") == 2
    assert _mark(client, ids[0], True).status_code == 302
    assert _mark(client, ids[1], True).status_code == 302 and _finals(app) == {ids[0], ids[1]}
    third = _mark(client, ids[2], True)
    assert third.status_code == 409 and "At most 2 submissions per exercise can be final" in third.get_data(
        as_text=True
    )
    assert _finals(app) == {ids[0], ids[1]}
    assert 'id="mark-final" disabled' in client.get(f"/submissions/{ids[2]}").get_data(as_text=True)
    assert _mark(client, ids[0], False).status_code == 302 and _finals(app) == {ids[1]}
    refused = _mark(client, queued, True)
    assert refused.status_code == 400 and "Only a finished submission" in refused.get_data(as_text=True)
    page = client.get(f"/exercises/{SLUG}").get_data(as_text=True)
    assert page.count('class="final-badge">final<') == 1 and "marked <strong>final</strong> count" in page
    other = login_client(app, bob)
    token = csrf_token(other, f"/exercises/{SLUG}")
    assert other.post(f"/submissions/{ids[2]}/final", data={"csrf_token": token, "final": "1"}).status_code == 404
    assert other.post(f"/submissions/{ids[2]}/final", data={"final": "1"}).status_code == 400  # no CSRF token
    assert _finals(app) == {ids[1]}


def test_final_marking_over_the_api(app):
    ada = make_participant(app, "Ada", token=TOKEN)
    bob = make_participant(app, "Bob")
    ids = [make_submission(app, ada, status="done", public_score=score) for score in (0.6, 0.7, 0.8)]
    theirs = make_submission(app, bob, status="done", public_score=0.9)
    api = app.test_client()
    for submission_id in ids[:2]:
        response = api.post(f"/api/submissions/{submission_id}/final", json={"final": True}, headers=AUTH)
        assert response.status_code == 200 and response.get_json()["final"] is True
    third = api.post(f"/api/submissions/{ids[2]}/final", json={"final": True}, headers=AUTH)
    assert third.status_code == 409 and third.get_json()["error"]["code"] == "too_many_finals"
    assert api.post(f"/api/submissions/{theirs}/final", json={"final": True}, headers=AUTH).status_code == 404
    assert api.post(f"/api/submissions/{ids[0]}/final", json={"final": "yes"}, headers=AUTH).status_code == 400
    assert api.post(f"/api/submissions/{ids[0]}/final", json={"final": True}).status_code == 401
    unmarked = api.post(f"/api/submissions/{ids[0]}/final", json={"final": False}, headers=AUTH)
    assert unmarked.get_json()["final"] is False and _finals(app) == {ids[1]}
