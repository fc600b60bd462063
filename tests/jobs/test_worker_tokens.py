"""Worker tokens: made once and printed alone on the last line, stored hashed, listed, revoked at once."""

from __future__ import annotations

from server.db import new_session
from server.models import WorkerToken
from server.worker_tokens import token_hash, worker_for_token


def create(runner, name: str) -> str:
    result = runner.invoke(args=["worker-token", "create", name])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_create_prints_the_token_alone_on_its_last_line_and_stores_only_its_hash(app, runner):
    token = create(runner, "gpu-box-1")
    assert token.startswith("wt_") and len(token) > 40 and " " not in token
    with new_session(app) as db:
        row = db.query(WorkerToken).one()
        assert row.name == "gpu-box-1" and row.token_hash == token_hash(token) and token not in row.token_hash
        assert worker_for_token(db, token).name == "gpu-box-1"
        assert row.last_used_at is not None  # noted when used
        assert worker_for_token(db, token + "x") is None
        assert worker_for_token(db, "") is None and worker_for_token(db, None) is None


def test_a_name_has_one_active_token_and_bad_names_are_refused(runner):
    create(runner, "box")
    again = runner.invoke(args=["worker-token", "create", "box"])
    assert again.exit_code != 0 and "already has a token" in again.output
    bad = runner.invoke(args=["worker-token", "create", "no spaces/here"])
    assert bad.exit_code != 0 and "worker name" in bad.output


def test_revoke_ends_the_token_and_the_name_can_get_a_new_one(app, runner):
    old = create(runner, "box")
    result = runner.invoke(args=["worker-token", "revoke", "box"])
    assert result.exit_code == 0 and "Revoked" in result.output
    with new_session(app) as db:
        assert worker_for_token(db, old) is None
    listing = runner.invoke(args=["worker-token", "list"]).output
    assert "box" in listing and "revoked" in listing and old not in listing
    new = create(runner, "box")
    with new_session(app) as db:
        assert worker_for_token(db, new).name == "box" and worker_for_token(db, old) is None
    assert runner.invoke(args=["worker-token", "revoke", "nobody"]).exit_code != 0
