"""What bench/locustfile.py's participants send and read from the pages, without Locust (which patches the
standard library with gevent when imported), so that tests/bench/test_load_bench.py checks it against the app."""

from __future__ import annotations

import html
import re

PERSONAL_PASSWORD = "load-personal-pass"  # noqa: S105 - a throwaway instance
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
SUBMISSION_URL = re.compile(r"/submissions/(\d+)$")  # where an accepted submission redirects to
OPEN_STATUSES = {"queued", "running", "scoring"}
REFUSED = "(expected) submit refused: open submission or quota"
RETRIED = "(retried) POST on a kept-alive connection the server closed"
CODE = '''"""A participant's submission (bench/load.py's stand-in worker never runs it)."""
import keras


def train(data):
    model = keras.Sequential([keras.layers.Input((data.image_size, data.image_size, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(data.train, validation_data=data.val, epochs=2)
    return model
'''


def csrf_token(page: str | None) -> str:
    found = CSRF.search(page or "")
    return found.group(1) if found else ""


def join_form(token: str, event_password: str, name: str) -> dict:
    return {
        "csrf_token": token,
        "event_password": event_password,
        "display_name": name,
        "password": PERSONAL_PASSWORD,
        "password_confirm": PERSONAL_PASSWORD,
    }


def submitted_id(location: str | None) -> int | None:
    """The new submission's id from the submit's redirect, or None."""
    found = SUBMISSION_URL.search(location or "")
    return int(found.group(1)) if found else None


def expected_refusal(status: int, page: str | None) -> bool:
    """The event's limits at work: a second open submission (400) or a spent quota (429), not an error."""
    said = problem(page)
    return (status == 400 and "waiting or running" in said) or (status == 429 and "submissions allowed per" in said)


def problem(page: str | None, error: object = None) -> str:
    """The first error the page shows (its alert), else the connection's error, to say why in the failures table."""
    found = re.search(r'role="alert"[^>]*>(.*?)</(?:p|li|div|ul)>', page or "", re.DOTALL)
    if not found:
        return (page or "")[:160] if page or error is None else repr(error)[:160]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())[:200]


def stale_connection(status: int, error: object) -> bool:
    """No answer because the server closed the kept-alive connection first: a browser sends the request again."""
    return status == 0 and "closed" in repr(error).lower()
