"""Bad code input is a clear 400, never a 500, and nothing is queued (issue 9, point 4).

Code that makes the parser give up (memory, recursion) and JSON strings holding lone surrogates, through
the web form, a file upload and the notebook API.
"""

from __future__ import annotations

import pytest
from factories import login_client, make_participant, post_form
from sqlalchemy import func, select

from grader.grading import MAX_CODE_BYTES, SubmissionRejected, check_source
from server.db import new_session
from server.models import Submission

TOKEN = "code-input-token-" + "b" * 30
SLUG = "cnn-from-scratch"
EXHAUSTING = {
    "long unary minus chain": "x = " + "-" * 100_000 + "1\n",
    "long not chain": "x = " + "not " * 50_000 + "y\n",
    "long invert chain": "x = " + "~" * 200_000 + "1\n",
    "deep attribute chain": "x = y" + ".a" * 120_000 + "\n",
    "long binary chain": "x = y" + "+y" * 120_000 + "\n",
    "deep lambda nesting": "f = " + "lambda: " * 30_000 + "1\n",
    "deep conditional nesting": "x = " + "1 if 1 else " * 20_000 + "1\n",
}


def queued(app) -> int:
    with new_session(app) as db:
        return db.scalar(select(func.count(Submission.id)))


@pytest.mark.parametrize("name", sorted(EXHAUSTING))
def test_code_that_exhausts_the_parser_is_refused_in_plain_words(name):
    code = EXHAUSTING[name]
    assert len(code.encode()) <= MAX_CODE_BYTES  # refused for its shape, not its size
    with pytest.raises(SubmissionRejected) as caught:
        check_source(code)
    assert caught.value.kind in ("too_complex", "syntax_error")
    assert "nested too deeply" in str(caught.value) or "SyntaxError" in str(caught.value)


@pytest.mark.parametrize("name", sorted(EXHAUSTING))
def test_every_way_in_answers_400_and_queues_nothing(app, name):
    code = EXHAUSTING[name]
    participant = make_participant(app, "Ada", token=TOKEN)
    browser = login_client(app, participant)
    form = post_form(browser, f"/exercises/{SLUG}/submit", {"code": code}, form_url=f"/exercises/{SLUG}")
    assert form.status_code == 400 and (b"nested too deeply" in form.data or b"SyntaxError" in form.data)
    api = app.test_client().post(
        f"/api/exercises/{SLUG}/submissions", json={"code": code}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert api.status_code == 400, api.data[:300]
    assert api.get_json()["error"]["code"] in ("too_complex", "syntax_error")
    assert queued(app) == 0


def post_raw_json(app, body: str):
    """POST a JSON body exactly as written (escapes such as \\ud800 included) to the notebook API."""
    return app.test_client().post(
        f"/api/exercises/{SLUG}/submissions",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


LONE_SURROGATES = {
    "code": '{"code": "def train(data):\\n    return \\"\\ud800\\"\\n"}',
    "code only": '{"code": "\\udfff"}',
}


@pytest.mark.parametrize("name", sorted(LONE_SURROGATES))
def test_json_with_lone_surrogates_in_the_code_is_a_clear_400(app, name):
    make_participant(app, "Ada", token=TOKEN)
    response = post_raw_json(app, LONE_SURROGATES[name])
    assert response.status_code == 400, response.data[:300]
    error = response.get_json()["error"]
    assert error["code"] == "encoding" and "lone surrogate" in error["message"]
    assert queued(app) == 0


def test_a_lone_surrogate_in_the_file_name_is_replaced_not_a_500(app):
    make_participant(app, "Ada", token=TOKEN)
    body = '{"code": "def train(data):\\n    return None\\n", "filename": "mine\\ud800\\u0000.py"}'
    response = post_raw_json(app, body)
    assert response.status_code == 201, response.data[:300]
    with new_session(app) as db:
        filename = db.scalars(select(Submission.filename)).one()
    assert filename.startswith("mine") and filename.endswith(".py") and "\x00" not in filename
    filename.encode("utf-8")  # storable: no lone surrogate left


DEEP_JSON = {
    "deep array": "[" * 100_000 + "]" * 100_000,
    "deep code value": '{"code": ' + "[" * 50_000 + "]" * 50_000 + "}",
    "deep file name": '{"code": "x = 1", "filename": ' + '{"a":' * 20_000 + "1" + "}" * 20_000 + "}",
}


@pytest.mark.parametrize("name", sorted(DEEP_JSON))
def test_json_nested_too_deeply_is_a_clear_400(app, name):
    make_participant(app, "Ada", token=TOKEN)
    response = post_raw_json(app, DEEP_JSON[name])
    assert response.status_code == 400, response.data[:300]
    assert response.get_json()["error"]["message"].startswith(("The JSON body is nested too deeply", "Send JSON"))
    assert queued(app) == 0
