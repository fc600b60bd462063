"""The checks a submission's source passes before it is queued (grader/grading.py)."""

from __future__ import annotations

import pytest

from grader.grading import MAX_CODE_BYTES, SubmissionRejected, check_source


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (b"def train(:\n", "syntax_error", "SyntaxError at line 1"),
        (b"   \n", "empty", "empty"),
        (b"\xff\xfe", "encoding", "not UTF-8"),
        (b"x = 1\x00", "encoding", "NUL"),
        (b"#" * (MAX_CODE_BYTES + 1), "too_large", "at most"),
    ],
)
def test_check_source_rejects(code, kind, message):
    with pytest.raises(SubmissionRejected, match=message) as caught:
        check_source(code)
    assert caught.value.kind == kind


def test_check_source_accepts_unicode():
    assert check_source("# Grüße\ndef train(data):\n    return None\n".encode()).startswith("# Grüße")
