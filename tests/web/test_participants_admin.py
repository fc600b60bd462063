"""The instructor's participants page over HTTP (/instructor/participants) and the participant's /reset-password:
listing and search, rename, reset codes, hide, disqualify, restore, delete; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import csrf_token, instructor_login, login_client, make_participant, make_submission, post_form
from sqlalchemy import func, select

from server.db import new_session
from server.job_store import predictions_path
from server.models import NameChange, Participant, QuotaGrant, Submission, utcnow
from server.passwords import check_password
from server.scoreboard import private_standings, standings

PAGE = "/instructor/participants/"
SLUG = "cnn-from-scratch"
ACTIONS = ("rename", "reset-password", "hide", "disqualify", "restore", "delete")


def _instructor(app):
    client = app.test_client()
    instructor_login(client)
    return client


def _post(client, path: str, data: dict | None = None):
    return client.post(PAGE + path, data={"csrf_token": csrf_token(client, PAGE), **(data or {})})


def _person(app, participant_id: int) -> Participant | None:
    with new_session(app) as db:
        person = db.get(Participant, participant_id)
        if person is not None:
            db.expunge(person)
        return person


def _reset(client, name: str, code: str, password: str = "brand-new-pass-1", confirm: str | None = None):
    data = {"display_name": name, "code": code, "password": password, "password_confirm": confirm or password}
    return post_form(client, "/reset-password", data)


def test_the_page_lists_everyone_with_their_figures_and_searches(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob Builder")
    make_submission(app, ada, status="done", public_score=0.8125, private_score=0.99)
    make_submission(app, ada, status="done", public_score=0.5)
    make_submission(app, ada, status="failed")
    client = _instructor(app)
    assert 'id="participants-link"' in client.get("/instructor/").get_data(as_text=True)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Ada" in page and "Bob Builder" in page and "0.8125" in page and "0.9900" not in page
    assert f'id="participant-{ada}"' in page and "2 participants" in page
    found = client.get(PAGE + "?q=bUiL").get_data(as_text=True)
    assert f'id="participant-{bob}"' in found and f'id="participant-{ada}"' not in found
    assert "No participants" in client.get(PAGE + "?q=%25").get_data(as_text=True)  # % is text, not a wildcard


@pytest.mark.parametrize("action", ACTIONS)
def test_participants_get_403_for_every_action(app, action):
    ada = make_participant(app, "Ada")
    client = login_client(app, ada)
    token = csrf_token(client, "/account")
    answer = client.post(f"{PAGE}{ada}/{action}", data={"csrf_token": token, "reason": "x", "new_name": "Eve"})
    assert answer.status_code == 403
    assert client.get(PAGE).status_code == 403
    person = _person(app, ada)
    assert person.display_name == "Ada" and not person.hidden and person.reset_code_hash is None


@pytest.mark.parametrize("action", ACTIONS)
def test_a_post_without_csrf_token_is_refused(app, action):
    ada = make_participant(app, "Ada")
    answer = _instructor(app).post(f"{PAGE}{ada}/{action}", data={"reason": "x", "new_name": "Eve", "confirm": "yes"})
    assert answer.status_code == 400
    person = _person(app, ada)
    assert person is not None and person.display_name == "Ada" and not person.hidden


def test_rename_keeps_the_history_and_refuses_bad_or_taken_names(app):
    ada, _bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    client = _instructor(app)
    for bad in ("", "x", "<script>", "BOB", "a" * 33):
        answer = _post(client, f"{ada}/rename", {"new_name": bad})
        assert answer.status_code == 400, bad
        assert _person(app, ada).display_name == "Ada"
    answer = _post(client, f"{ada}/rename", {"new_name": "  Ada   Lovelace "})
    assert answer.status_code == 302
    assert "Renamed Ada to Ada Lovelace" in client.get(PAGE).get_data(as_text=True)
    person = _person(app, ada)
    assert person.display_name == "Ada Lovelace" and person.name_key == "ada lovelace"
    with new_session(app) as db:
        history = [
            (c.old_name, c.new_name) for c in db.scalars(select(NameChange).where(NameChange.participant_id == ada))
        ]
    assert history == [("Ada", "Ada Lovelace")]


def test_a_reset_code_is_shown_once_and_sets_only_the_password(app):
    ada = make_participant(app, "Ada", token="ada-notebook-token-0123456789abcdef")
    make_submission(app, ada, status="done", public_score=0.5)
    client = _instructor(app)
    answer = _post(client, f"{ada}/reset-password")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    code = answer.get_data(as_text=True).split('id="reset-code">')[1].split("<")[0]
    assert len(code) == 14 and code.count("-") == 2
    person = _person(app, ada)
    assert code not in (person.reset_code_hash or "") and len(person.reset_code_hash) == 64
    assert code not in client.get(PAGE).get_data(as_text=True)  # shown once
    before = person
    visitor = app.test_client()
    assert 'id="reset-password-link"' in visitor.get("/login").get_data(as_text=True)
    assert visitor.get("/reset-password").status_code == 200  # public
    assert _reset(visitor, "Ada", code, confirm="something-else").status_code == 400
    assert _reset(visitor, "Ada", code, password="short").status_code == 400
    assert _reset(visitor, "ada", code.lower().replace("-", " ")).status_code == 302  # case, spaces: as typed
    after = _person(app, ada)
    assert check_password(after.password_hash, "brand-new-pass-1") and after.reset_code_hash is None
    assert after.api_token_hash == before.api_token_hash and after.display_name == "Ada"
    with new_session(app) as db:
        assert db.scalar(select(func.count(Submission.id))) == 1
    assert _reset(visitor, "Ada", code, password="another-pass-22").status_code == 400  # used up
    assert check_password(_person(app, ada).password_hash, "brand-new-pass-1")
    login = post_form(visitor, "/login", {"display_name": "Ada", "password": "brand-new-pass-1"})
    assert login.status_code == 302


def test_an_expired_code_fails(app):
    ada = make_participant(app, "Ada")
    code = _post(_instructor(app), f"{ada}/reset-password").get_data(as_text=True).split('id="reset-code">')[1][:14]
    with new_session(app) as db:
        db.get(Participant, ada).reset_code_expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    assert _reset(app.test_client(), "Ada", code).status_code == 400
    assert check_password(_person(app, ada).password_hash, "personal-pass-1")


def test_wrong_codes_are_counted_by_the_login_throttle(app):
    app.config["LOGIN_NAME_LIMIT"] = 2
    ada = make_participant(app, "Ada")
    code = _post(_instructor(app), f"{ada}/reset-password").get_data(as_text=True).split('id="reset-code">')[1][:14]
    visitor = app.test_client()
    assert _reset(visitor, "Ada", "AAAA-AAAA-AAAA").status_code == 400
    assert _reset(visitor, "Ada", "BBBB-BBBB-BBBB").status_code == 400
    locked = _reset(visitor, "Ada", code)  # even the right code waits now
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    assert check_password(_person(app, ada).password_hash, "personal-pass-1")
    assert _reset(visitor, "Nobody", "AAAA-AAAA-AAAA").status_code == 400  # unknown names look the same


def test_hidden_and_disqualified_leave_the_boards_and_come_back_after_restore(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    make_submission(app, ada, status="done", public_score=0.9, private_score=0.8)
    make_submission(app, bob, status="done", public_score=0.7, private_score=0.6)
    client = _instructor(app)

    def names():
        with new_session(app) as db:
            return [row.display_name for row in standings(db, SLUG)], [
                row.display_name for row in private_standings(db, SLUG, None)
            ]

    assert names() == (["Ada", "Bob"], ["Ada", "Bob"])
    assert _post(client, f"{ada}/hide").status_code == 302
    assert _post(client, f"{bob}/disqualify", {"reason": "  shared   code "}).status_code == 302
    assert names() == ([], [])
    assert _person(app, bob).disqualified_reason == "shared code"
    assert "Ada" not in client.get(f"/leaderboard/{SLUG}").get_data(as_text=True)
    notice = login_client(app, bob).get("/").get_data(as_text=True)
    assert 'id="moderation-notice"' in notice and "disqualified: shared code" in notice
    assert "not shown on the leaderboards" in login_client(app, ada).get("/").get_data(as_text=True)
    assert _post(client, f"{ada}/restore").status_code == 302
    assert _post(client, f"{bob}/restore").status_code == 302
    assert names() == (["Ada", "Bob"], ["Ada", "Bob"])
    assert 'id="moderation-notice"' not in login_client(app, bob).get("/").get_data(as_text=True)


def test_disqualify_needs_a_reason_and_escapes_it(app):
    ada = make_participant(app, "Ada")
    client = _instructor(app)
    for bad in ("", "   ", "x" * 501):
        assert _post(client, f"{ada}/disqualify", {"reason": bad}).status_code == 400
        assert _person(app, ada).disqualified_reason is None
    assert _post(client, f"{ada}/disqualify", {"reason": "<b>bold</b>"}).status_code == 302
    assert "&lt;b&gt;bold&lt;/b&gt;" in client.get(PAGE).get_data(as_text=True)
    notice = login_client(app, ada).get("/").get_data(as_text=True)
    assert "&lt;b&gt;" in notice and "<b>bold" not in notice


def test_delete_asks_first_then_removes_everything_of_theirs(app):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    scored = make_submission(app, ada, status="done", public_score=0.5)
    make_submission(app, ada)
    kept = make_submission(app, bob)
    for submission_id in (scored, kept):  # the worker kept both jobs' predictions
        predictions_path(app, submission_id).parent.mkdir(parents=True, exist_ok=True)
        predictions_path(app, submission_id).write_text("image_id,malignant\n")
    with new_session(app) as db:
        db.add(QuotaGrant(participant_id=ada, slug=SLUG, extra=2))
        db.commit()
    client = _instructor(app)
    _post(client, f"{ada}/rename", {"new_name": "Ada L"})
    confirm = client.get(f"{PAGE}?delete={ada}")
    assert confirm.status_code == 200 and 'id="confirm-delete"' in confirm.get_data(as_text=True)
    assert "all 2 of their submissions" in confirm.get_data(as_text=True)
    assert _post(client, f"{ada}/delete").status_code == 400  # no confirm=yes: the question again
    assert _person(app, ada) is not None
    assert _post(client, f"{ada}/delete", {"confirm": "yes"}).status_code == 302
    assert _person(app, ada) is None and _person(app, bob) is not None
    with new_session(app) as db:
        assert list(db.scalars(select(Submission.id))) == [kept]
        assert not db.scalars(select(QuotaGrant)).all() and not db.scalars(select(NameChange)).all()
    assert not predictions_path(app, scored).exists() and predictions_path(app, kept).exists()
    assert _post(client, f"{ada}/hide").status_code == 400  # gone
