"""Time from submit to score through a running server, for the exercise's solution and a trivial submission.

Usage: start `make demo` (or `workshop serve`), then
    .venv/bin/python bench/submit_to_score.py --url http://127.0.0.1:5000 --event-password PASS
Prints each time and its ratio to `python -c "import tensorflow"` measured in the same run.
Talks only to the URL given (use a loopback address).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the smallest honest submission: one Dense layer on pooled pixels (also `workshop grade`-able)
TRIVIAL = (Path(__file__).resolve().parent / "trivial_submission.py").read_text(encoding="utf-8")


class Browser:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path) as response:
            return response.read().decode()

    def post(self, path: str, fields: dict, form_path: str) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get(form_path)).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        with self.opener.open(self.base + path, data=body) as response:
            return response.geturl()


def time_submission(browser: Browser, slug: str, code: str) -> tuple[float, dict]:
    started = time.monotonic()
    location = browser.post(f"/exercises/{slug}/submit", {"code": code}, f"/exercises/{slug}")
    submission_id = int(re.search(r"/submissions/(\d+)", location).group(1))
    while True:
        state = json.loads(browser.get(f"/submissions/{submission_id}.json"))
        if state["status"] in ("done", "failed", "cancelled"):
            return time.monotonic() - started, state
        time.sleep(0.25)


def time_tensorflow_import() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--event-password", required=True)
    parser.add_argument("--exercise", default="cnn-from-scratch")
    args = parser.parse_args()
    browser = Browser(args.url)
    name, password = f"bench-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    browser.post(
        "/join",
        {
            "event_password": args.event_password,
            "display_name": name,
            "password": password,
            "password_confirm": password,
        },
        "/join",
    )
    solution = (ROOT / "exercises" / args.exercise / "solution.py").read_text()
    tf_import = time_tensorflow_import()
    print(f"python -c 'import tensorflow': {tf_import:.1f} s")
    for label, code in (("trivial", TRIVIAL), ("solution", solution)):
        seconds, state = time_submission(browser, args.exercise, code)
        print(
            f"{label:9} submit->score {seconds:6.1f} s  ({seconds / tf_import:4.1f}x import tensorflow)  "
            f"status={state['status']} public ROC AUC={state['public_score']}"
        )


if __name__ == "__main__":
    main()
