"""`workshop participants`: list (table and JSON), rename, reset-password, hide, disqualify, restore, delete --yes,
with the same functions as the instructor's page; bad input is an error that changes nothing."""

from __future__ import annotations

import json
import re

from factories import make_participant, make_submission
from sqlalchemy import func, select

from server.db import new_session
from server.models import NameChange, Participant, Submission
from server.participants_admin import code_matches
from server.scoreboard import standings

SLUG = "cnn-from-scratch"


def _person(app, name_key: str) -> Participant | None:
    with new_session(app) as db:
        person = db.scalar(select(Participant).where(Participant.name_key == name_key))
        if person is not None:
            db.expunge(person)
        return person


def _ok(runner, *args: str) -> str:
    result = runner.invoke(args=["participants", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _fails(runner, *args: str) -> str:
    result = runner.invoke(args=["participants", *args])
    assert result.exit_code != 0, result.output
    return result.output


def test_list_shows_everyone_as_a_table_and_as_json(app, runner):
    ada = make_participant(app, "Ada")
    make_participant(app, "Bob")
    make_submission(app, ada, status="done", public_score=0.75, private_score=0.5)
    table = _ok(runner, "list")
    assert "Ada" in table and "Bob" in table and f"{SLUG} 0.7500" in table and "2 participants" in table
    assert "0.5000" not in table  # private scores are not part of the list
    rows = json.loads(_ok(runner, "list", "--json"))
    assert [row["display_name"] for row in rows] == ["Ada", "Bob"]
    assert rows[0]["best_public"] == {SLUG: 0.75} and rows[0]["submissions"] == 1 and rows[0]["hidden"] is False
    assert [row["display_name"] for row in json.loads(_ok(runner, "list", "--json", "--search", "BO"))] == ["Bob"]


def test_rename_keeps_history_and_refuses_bad_names(app, runner):
    make_participant(app, "Ada")
    make_participant(app, "Bob")
    assert "no participant called" in _fails(runner, "rename", "Nobody", "Eve")
    assert "taken" in _fails(runner, "rename", "Ada", "bob")
    assert "Display name" in _fails(runner, "rename", "Ada", "<x>")
    assert _person(app, "ada").display_name == "Ada"
    assert "Renamed Ada to Ada L" in _ok(runner, "rename", "ada", "Ada L")
    with new_session(app) as db:
        assert [(c.old_name, c.new_name) for c in db.scalars(select(NameChange))] == [("Ada", "Ada L")]


def test_reset_password_prints_a_code_that_only_its_hash_is_stored_for(app, runner):
    make_participant(app, "Ada")
    output = _ok(runner, "reset-password", "Ada")
    code = re.search(r"Reset code for Ada: (\S+)", output).group(1)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)
    person = _person(app, "ada")
    assert code not in person.reset_code_hash and code_matches(person, code)
    again = re.search(r"Reset code for Ada: (\S+)", _ok(runner, "reset-password", "Ada")).group(1)
    assert not code_matches(_person(app, "ada"), code) and code_matches(_person(app, "ada"), again)  # replaced


def test_hide_disqualify_and_restore_move_people_off_and_back_onto_the_board(app, runner):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    make_submission(app, ada, status="done", public_score=0.9)
    make_submission(app, bob, status="done", public_score=0.8)

    def board():
        with new_session(app) as db:
            return [row.display_name for row in standings(db, SLUG)]

    _ok(runner, "hide", "Ada")
    assert "--reason" in _fails(runner, "disqualify", "Bob")
    assert "reason" in _fails(runner, "disqualify", "Bob", "--reason", "  ")
    assert _person(app, "bob").disqualified_reason is None
    _ok(runner, "disqualify", "Bob", "--reason", "copied the answers")
    assert board() == []
    rows = json.loads(_ok(runner, "list", "--json"))
    assert [(row["hidden"], row["disqualified_reason"]) for row in rows] == [
        (True, None),
        (False, "copied the answers"),
    ]
    _ok(runner, "restore", "Ada")
    _ok(runner, "restore", "Bob")
    assert board() == ["Ada", "Bob"]


def test_delete_needs_yes_and_removes_their_submissions(app, runner):
    ada, bob = make_participant(app, "Ada"), make_participant(app, "Bob")
    make_submission(app, ada)
    make_submission(app, bob)
    assert "--yes" in _fails(runner, "delete", "Ada")
    assert _person(app, "ada") is not None
    assert "Deleted Ada and 1 submission." in _ok(runner, "delete", "Ada", "--yes")
    assert _person(app, "ada") is None and _person(app, "bob") is not None
    with new_session(app) as db:
        assert db.scalar(select(func.count(Submission.id))) == 1
    assert "no participant called" in _fails(runner, "delete", "Ada", "--yes")
