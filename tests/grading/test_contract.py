"""The contract check before the queue: train(data) at the top level taking one argument; warnings, not refusals,
for suspicious but legal code (grader/contract.py), and how queueing turns them into 400s and notes."""

from __future__ import annotations

import pytest
from factories import make_participant
from sqlalchemy import func, select

from grader.contract import ContractViolation, check_contract
from server.db import new_session
from server.models import Participant, Submission
from server.queueing import MAX_SEED, CodeRejected, InvalidSeed, chosen_seed, queue_submission

ACCEPTED = {
    "plain": "def train(data):\n    return None\n",
    "star args": "def train(*args):\n    return None\n",
    "extra arguments with defaults": "def train(data, epochs=3, *, rate=0.01, **options):\n    return None\n",
    "lambda assignment": "train = lambda data: None\n",
    "assigned from a factory": "def make():\n    return print\ntrain = make()\n",
    "imported": "from helpers import train\n",
    "imported under another name": "from helpers import fit as train\n",
    "star import": "from helpers import *\n",
    "positional-only": "def train(data, /):\n    return None\n",
    "with a class method named train beside it": "class Trainer:\n    def train(self, a, b):\n        pass\n\n"
    "def train(data):\n    return Trainer()\n",
}

REFUSED = {
    "no train": ("import keras\n\ndef fit(data):\n    pass\n", "has no function train(data) at the top level", None),
    "train at class level": ("class Model:\n    def train(self, data):\n        pass\n", "inside the class Model", 2),
    "train inside a function": ("def outer():\n    def train(data):\n        pass\n", "the function outer", 2),
    "two arguments": ("import os\n\ndef train(data, epochs):\n    pass\n", "train takes 2 arguments (line 3)", 3),
    "no arguments": ("def train():\n    pass\n", "train takes no arguments", 1),
    "lambda with two": ("train = lambda data, model: None\n", "train takes 2 arguments", 1),
    "async def": ("async def train(data):\n    pass\n", "async def", 1),
    "required keyword-only": ("def train(data, *, epochs):\n    pass\n", "keyword argument(s) epochs", 1),
}


@pytest.mark.parametrize("code", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_code_keeping_the_contract_is_accepted_without_warnings(code):
    assert check_contract(code).warnings == []


@pytest.mark.parametrize(("code", "words", "line"), REFUSED.values(), ids=REFUSED.keys())
def test_code_breaking_the_contract_is_refused_in_plain_words(code, words, line):
    with pytest.raises(ContractViolation) as refused:
        check_contract(code)
    assert words in str(refused.value)
    assert "train(data)" in str(refused.value) or "def train" in str(refused.value)
    assert refused.value.line == line


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("def train(data):\n    pass\n\ndef train(data):\n    return 1\n", "train is defined 2 times (lines 1, 4)"),
        ("if True:\n    def train(data):\n        pass\n", "inside an if block (line 2)"),
        ("try:\n    import x\nexcept ImportError:\n    def train(data):\n        pass\n", "inside a try block"),
        ("import os\nos.system('nvidia-smi')\n\ndef train(data):\n    pass\n", "runs a shell command (os.system)"),
        ("import requests\n\ndef train(data):\n    pass\n", "line 1 imports requests: the sandbox has no network"),
        ("from urllib.request import urlopen\n\ndef train(data):\n    pass\n", "imports urllib.request"),
        ("def train(data):\n    input('go?')\n", "line 2 calls input()"),
        ("def train(data):\n    open('/data/private/test_labels.csv')\n", "mentions the hidden test labels"),
    ],
)
def test_suspicious_but_legal_code_gets_a_warning(code, words):
    warnings = check_contract(code).warnings
    assert any(words in warning for warning in warnings), warnings


def test_every_exercise_starter_and_solution_keeps_the_contract():
    from paths import PROJECT_ROOT

    files = sorted((PROJECT_ROOT / "exercises").glob("*/*.py"))
    assert files
    for path in files:
        assert check_contract(path.read_text(encoding="utf-8")).warnings == [], path


def _queue(app, participant_id, code, seed=None):
    from server.catalog import catalog

    with app.app_context(), new_session(app) as db:
        participant = db.get(Participant, participant_id)
        exercise = catalog(app)["cnn-from-scratch"]
        return queue_submission(db, participant, exercise, code, "submission.py", seed=seed)


def _count(app) -> int:
    with new_session(app) as db:
        return db.scalar(select(func.count(Submission.id)))


def test_queueing_refuses_a_broken_contract_with_its_line_and_stores_nothing(app):
    ada = make_participant(app)
    with pytest.raises(CodeRejected) as refused:
        _queue(app, ada, "import keras\n\ndef train(data, epochs):\n    pass\n")
    assert refused.value.code == "contract" and refused.value.status == 400 and refused.value.line == 3
    assert refused.value.details == {"line": 3}
    assert _count(app) == 0
    with new_session(app) as db:  # the participant's row was never locked/written: the quota was not touched
        assert db.get(Participant, ada).last_submitted_at is None


def test_a_syntax_error_carries_its_line_too(app):
    ada = make_participant(app)
    with pytest.raises(CodeRejected) as refused:
        _queue(app, ada, "def train(data):\n    return (\n\n")
    assert refused.value.code == "syntax_error" and refused.value.line == 2
    assert _count(app) == 0


def test_warnings_are_stored_as_notes_and_the_seed_is_kept(app):
    ada = make_participant(app)
    submission = _queue(app, ada, "import requests\n\ndef train(data):\n    return None\n", seed="77")
    with new_session(app) as db:
        row = db.get(Submission, submission.id)
        assert row.seed == 77 and row.status == "queued"
        assert row.notes and row.notes[0].startswith("Warning: line 1 imports requests")


def test_a_seed_is_drawn_when_none_is_asked_for():
    seeds = {chosen_seed(None) for _ in range(20)} | {chosen_seed("  ")}
    assert all(0 <= seed <= MAX_SEED for seed in seeds) and len(seeds) > 15
    assert chosen_seed(0) == 0 and chosen_seed(" 42 ") == 42 and chosen_seed(MAX_SEED) == MAX_SEED


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, "abc", "1.5", 2.0, True, [], {}, "9" * 5000])
def test_a_seed_that_is_not_a_whole_number_in_range_is_refused(seed):
    with pytest.raises(InvalidSeed) as refused:
        chosen_seed(seed)
    assert refused.value.status == 400 and "whole number from 0 to 2147483647" in refused.value.message
