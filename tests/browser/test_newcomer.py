"""What a new participant tripped over (issue 14, point 7), in Chromium against a real `workshop serve`: landing on
Join, a keyboard-only submission, the draft never lost, a refused line marked beside the editor, local times,
390-px phone pages without sideways scrolling, and the notebook page's token, copy buttons and waiting snippet."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_kit import join_in_browser, live_server, page, shot  # noqa: F401
from factories import make_participant, make_submission
from paths import PROJECT_ROOT
from sqlalchemy import select

from server import create_app
from server.db import new_session
from server.models import Participant

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

SLUG = "cnn-from-scratch"
EDITOR = "document.querySelector('.CodeMirror').CodeMirror"
IN_EDITOR = "!!(document.activeElement && document.activeElement.closest('.CodeMirror'))"
PHONE = {"width": 390, "height": 844}
# to name in a failure: the five elements reaching furthest right (some may be clipped, e.g. inside a table wrapper)
WIDEST = """[...document.querySelectorAll('body *')].map(e => [Math.round(e.getBoundingClientRect().right),
  e.tagName + '.' + e.className + '#' + e.id]).sort((a, b) => b[0] - a[0]).slice(0, 5)"""
PATIENCE_MS = 90_000  # two shared cores, often busy: wait longer than Playwright's 30 s before failing


@pytest.fixture(autouse=True)
def patient(page):  # noqa: F811
    page.set_default_timeout(PATIENCE_MS)


@pytest.fixture
def live_db(live_server, tmp_path, data_dir):  # noqa: F811
    """The live server's database, written from this process (as a finished job would write it)."""
    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    config = {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{database}"}
    return create_app({**config, "DATA_DIR": str(data_dir), "EXERCISES_DIR": str(PROJECT_ROOT / "exercises")})


def participant_id(app, name: str) -> int:
    with new_session(app) as db:
        return db.scalar(select(Participant.id).where(Participant.display_name == name))


def editor_value(page) -> str:  # noqa: F811
    page.wait_for_selector(".CodeMirror")
    return page.evaluate(f"{EDITOR}.getValue()")


def wait_for(page, script: str, seconds: float = 15) -> None:  # noqa: F811
    deadline = time.monotonic() + seconds
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {seconds} s: {script}"
        time.sleep(0.05)


def tab_until(page, script: str, most: int) -> int:  # noqa: F811
    """Press Tab until ``script`` is true; how many presses it took."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if page.evaluate(script):
            return presses
    raise AssertionError(f"not reached with {most} presses of Tab: {script}")


def test_the_first_visit_lands_on_join_and_log_in_is_one_click_away(live_server, page):  # noqa: F811
    page.goto(live_server + "/")
    assert "/join" in page.url and page.inner_text("h1") == "Join the workshop"
    assert page.is_visible("#already-joined >> text=Already joined?")
    shot(page, "newcomer-01-landing")
    page.click("#login-link")
    page.wait_for_url(lambda address: "/login" in address)
    assert page.inner_text("h1") == "Log in"


def test_a_keyboard_only_submission_and_the_draft_is_never_lost(live_server, page):  # noqa: F811
    join_in_browser(page, live_server, "Keyboard Kim")
    exercise = f"{live_server}/exercises/{SLUG}"
    page.goto(exercise)
    starter = editor_value(page)
    field = page.locator(".CodeMirror textarea")
    assert field.get_attribute("aria-labelledby") == "code-label" and field.get_attribute("aria-label")
    assert "Esc then Tab" in page.inner_text("#editor-keys")

    presses = tab_until(page, IN_EDITOR, 120)  # from the top of the page, by keyboard alone
    print(f"Tab presses from the top of the page to the editor: {presses}")
    page.keyboard.press("Control+Home")
    page.keyboard.type("# typed with the keyboard alone")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # Tab indents inside the editor...
    assert page.evaluate(IN_EDITOR) and "alone\n    " in editor_value(page)
    page.keyboard.press("Shift+Tab")  # Shift-Tab takes the indentation away again
    assert "alone\n" + starter.splitlines()[0] in editor_value(page)
    page.keyboard.press("Escape")  # ...and Esc then Tab leaves it
    page.keyboard.press("Tab")
    assert not page.evaluate(IN_EDITOR)
    assert page.evaluate("document.activeElement.id") == "restore-starter"
    tab_until(page, "document.activeElement.id === 'submit'", 6)
    shot(page, "newcomer-02-keyboard-on-submit")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda address: "/submissions/" in address)
    sent = "# typed with the keyboard alone\n" + starter

    page.go_back()  # Back shows the edited code, not the starter
    page.wait_for_url(exercise)
    assert editor_value(page) == sent
    page.goto(exercise)  # and so does the exercise link: the server's last submission
    assert editor_value(page) == sent and "your last submission" in page.inner_text("#code-origin")

    page.click(".CodeMirror-line >> nth=-1")
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# an unsent draft")
    page.reload()  # the browser kept the draft
    assert editor_value(page) == sent + "\n# an unsent draft"
    assert "your unsent draft, kept in this browser" in page.inner_text("#draft-status")
    assert not page.is_visible("#origin-words")
    shot(page, "newcomer-03-draft-restored")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#restore-starter")
    time.sleep(0.5)
    assert editor_value(page).endswith("# an unsent draft"), "dismissed: nothing replaced"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#discard-draft")
    assert editor_value(page) == sent and page.is_visible("#origin-words")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#restore-starter")
    wait_for(page, f"{EDITOR}.getValue() === {json.dumps(starter)}")


def test_a_refused_submission_is_shown_beside_the_editor_with_its_line_marked(live_server, page):  # noqa: F811
    join_in_browser(page, live_server, "Typo Theo")
    page.goto(f"{live_server}/exercises/{SLUG}")
    broken = "import keras\n\n\ndef train(data:\n    return None\n"
    editor_value(page)
    page.evaluate(f"{EDITOR}.setValue({json.dumps(broken)})")
    page.click("#submit")
    page.wait_for_selector("#code-error")
    assert editor_value(page) == broken, "nothing is lost"
    assert page.evaluate("document.activeElement.id") == "code-error"
    assert page.get_attribute("#code-error", "role") == "alert"
    assert "SyntaxError at line 4" in page.inner_text("#code-error")
    marked = "document.querySelector('.cm-error-line').parentElement.querySelector('.CodeMirror-linenumber')"
    assert page.evaluate(f"{marked}.textContent") == "4"
    assert page.locator(".cm-error-marker").count() == 1
    error_box = page.locator("#code-error").bounding_box()
    editor_box = page.locator(".CodeMirror").bounding_box()
    gap = editor_box["y"] - (error_box["y"] + error_box["height"])
    assert 0 <= gap < 150, f"the message is {gap:.0f} px above the editor"
    assert 0 <= error_box["y"] < 900, "the message is in view"
    shot(page, "newcomer-04-refused-line-marked")


def test_pages_fit_a_390_px_phone_and_times_are_local(live_server, live_db, page):  # noqa: F811
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0, tzinfo=None)
    long_name = "Maximiliana Wolfeschlegelstein"
    for name, score in ((long_name, 0.9123), ("Bo", 0.8), ("Cy", 0.7)):
        make_submission(live_db, make_participant(live_db, name), status="done", public_score=score, finished_at=today)
    phone = page.context.browser.new_page(viewport=PHONE, timezone_id="Asia/Kolkata", is_mobile=True)
    phone.set_default_timeout(PATIENCE_MS)
    join_in_browser(phone, live_server, "Phone Pat")
    pat = participant_id(live_db, "Phone Pat")
    layers = ", ".join(f"layer_{n}=keras.layers.Dense({n})" for n in range(30))
    wide = f"def train(data):\n    return build({layers})\n"  # a line far wider than a phone
    make_submission(live_db, pat, status="done", public_score=0.6543, code=wide, created_at=today)
    make_submission(live_db, pat, status="failed", error_kind="runtime_error", code=wide)
    pages = {
        "list": "/",
        "exercise": f"/exercises/{SLUG}",
        "leaderboard": "/leaderboard",
        "board": f"/leaderboard/{SLUG}",
        "notebook": "/account",
    }
    widths = {}
    for name, path in pages.items():
        phone.goto(live_server + path)
        if name == "exercise":
            phone.wait_for_selector(".CodeMirror")
        widths[name] = phone.evaluate("document.scrollingElement.scrollWidth")
        if widths[name] > PHONE["width"]:
            widths[name] = (widths[name], phone.evaluate(WIDEST))
        shot(phone, f"newcomer-phone-{name}")
    phone.goto(live_server + "/account")
    phone.click("button:has-text('Make a notebook token')")
    phone.wait_for_selector("#token")
    widths["notebook with token"] = phone.evaluate("document.scrollingElement.scrollWidth")
    shot(phone, "newcomer-phone-notebook-token")
    print("scroll widths at 390 px:", widths)
    assert widths == dict.fromkeys(widths, 390), widths

    phone.goto(live_server + f"/exercises/{SLUG}")  # 10:00 UTC is 15:30 in India, and the page says whose time
    wait_for(phone, "document.querySelector('table.my-submissions time.localised') !== null")
    assert phone.inner_text("table.my-submissions time >> nth=1").endswith("15:30:00 (your time)")
    phone.goto(live_server + f"/leaderboard/{SLUG}")
    wait_for(phone, "document.querySelector('.leaderboard time.localised') !== null")
    assert phone.inner_text(".leaderboard time >> nth=0").endswith("15:30:00 (your time)")
    phone.close()


TRIVIAL = "import keras\n\n\ndef train(data):\n    raise SystemExit('the test stops here')\n"
SLEEPER = "import time\n\n\ndef train(data):\n    time.sleep(150)\n"


def api(url: str, token: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=10) as response:  # noqa: S310
        return json.load(response)


def lines_of(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in process.stdout], daemon=True).start()
    return lines


def test_the_notebook_token_is_made_once_copied_and_the_snippet_says_where_it_waits(
    live_server,  # noqa: F811
    live_db,
    page,  # noqa: F811
    tmp_path: Path,
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    join_in_browser(page, live_server, "Notebook Noor")
    page.goto(live_server + "/account")
    page.click("button:has-text('Make a notebook token')")
    page.wait_for_selector("#token")
    token = page.inner_text("#token").strip()
    snippet = page.inner_text("#snippet")
    page.click("#copy-token")
    wait_for(page, "document.getElementById('token-copied').textContent !== ''")
    assert page.inner_text("#token-copied") == "Copied."
    assert page.evaluate("navigator.clipboard.readText()") == token
    page.click("#copy-snippet")
    wait_for(page, "document.getElementById('snippet-copied').textContent === 'Copied.'")
    assert page.evaluate("navigator.clipboard.readText()").startswith("import datetime, json, time")
    shot(page, "newcomer-05-notebook-token")
    reloaded = page.reload()
    assert reloaded.headers["cache-control"] == "no-store"
    assert page.locator("#token").count() == 0 and page.is_visible("text=Make a new token")

    blocker = "ws_blocker-" + "x" * 30  # another participant's long job keeps the one slot busy
    make_participant(live_db, "Busy Bea", token=blocker)
    busy = api(f"{live_server}/api/exercises/{SLUG}/submissions", blocker, {"code": SLEEPER})
    for _ in range(300):
        if api(f"{live_server}/api/submissions/{busy['id']}", blocker)["status"] == "running":
            break
        time.sleep(0.2)
    (tmp_path / "submission.py").write_text(TRIVIAL)
    (tmp_path / "notebook.py").write_text(snippet + f'\n\njob = submit("{SLUG}")\n')
    process = subprocess.Popen(
        [sys.executable, "-u", "notebook.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, said = lines_of(process), []
    try:
        deadline = time.monotonic() + 60
        while not any(line.startswith("waiting: number") for line in said) and time.monotonic() < deadline:
            try:
                said.append(lines.get(timeout=1))
            except queue.Empty:
                assert process.poll() is None, said
    finally:
        process.kill()
        process.wait()
    print("the snippet said:", *said, sep="\n  ")
    assert said[0].startswith(f"submitted: {live_server}/submissions/"), said
    waiting = next(line for line in said if line.startswith("waiting"))
    assert waiting.startswith("waiting: number 1 in the queue, expected to start in about "), said
    assert waiting.endswith(")") and " (at " in waiting, said
