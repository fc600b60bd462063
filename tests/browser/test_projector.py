"""The projector in a real browser against a real `workshop serve`: pushed updates, the reveal, the join QR code."""

from __future__ import annotations

import time

import pytest
from browser_kit import instructor_in_browser, join_in_browser, live_server, page, shot, workshop, workshop_env
from factories import make_participant, make_submission
from paths import PROJECT_ROOT

from server import create_app

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]
__all__ = ["live_server", "page"]  # fixtures used by name

PUBLIC_URL = "https://short.example/dl-2026"
# public score, private score: the private board reorders them (Cy wins, Ada drops to last)
SCORES = {"Ada": (0.8811, 0.6011), "Bo": (0.8522, 0.7422), "Cy": (0.8233, 0.9333), "Di": (0.7944, 0.7044)}
PRIVATE_ORDER = ["Cy", "Bo", "Di", "Ada"]


@pytest.fixture
def live_env(tmp_path, data_dir) -> dict:
    return workshop_env(tmp_path, data_dir, WORKSHOP_PUBLIC_URL=PUBLIC_URL)


@pytest.fixture
def live_db(live_server, tmp_path, data_dir):
    """The live server's database, written from this process (as a finished job would write it)."""
    database = next(path for path in (tmp_path / "db" / "workshop.db", tmp_path / "workshop.db") if path.exists())
    config = {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{database}"}
    return create_app({**config, "DATA_DIR": str(data_dir), "EXERCISES_DIR": str(PROJECT_ROOT / "exercises")})


def record(app, name: str, public: float, private: float) -> None:
    make_submission(app, make_participant(app, name), status="done", public_score=public, private_score=private)


def join_as_viewer(page, url: str) -> None:
    """Join, and wait until the join has landed (the click does not wait for the next page)."""
    join_in_browser(page, url, "Watcher")
    page.wait_for_url(lambda address: "/join" not in address)


def wait_for(page, script: str, seconds: float = 15) -> None:
    """Poll ``script`` until true (wait_for_function evaluates strings, which the page's CSP forbids)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"still false after {seconds} s: {script}"
        time.sleep(0.05)


def test_a_new_score_appears_without_a_reload_and_is_highlighted(live_server, live_db, page):
    join_as_viewer(page, live_server)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(live_server + "/projector?exercise=cnn-from-scratch")
    page.wait_for_selector("#board-empty", state="visible")
    page.evaluate("window.__marker = 1")
    record(live_db, "Ada", 0.7712, 0.5)
    page.wait_for_selector("tr[data-name='Ada'].improved", timeout=10_000)
    assert page.evaluate("window.__marker") == 1  # the same page: no reload
    assert page.inner_text("tr[data-name='Ada']").split() == ["1", "Ada", "0.7712", "1"]
    for name, (public, private) in SCORES.items():
        record(live_db, name + "2", public, private)
    wait_for(page, "document.querySelectorAll('#board-rows tr').length === 5")
    assert page.inner_text("#board-rows tr:first-child td.name") == "Ada2"
    assert page.evaluate("window.__marker") == 1
    shot(page, "projector-1280x720-new-score")
    page.set_viewport_size({"width": 1920, "height": 1080})
    assert page.evaluate("document.documentElement.scrollHeight <= window.innerHeight")
    shot(page, "projector-1920x1080")


RECORD_SHOWN = """() => {
  window.__shown = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const row = change.target;
      if (row.classList.contains("shown") && !window.__shown.includes(row.dataset.name)) {
        window.__shown.push(row.dataset.name);
      }
    }
  }).observe(document.getElementById("board-rows"), {subtree: true, attributes: true, attributeFilter: ["class"]});
}"""


def test_the_reveal_plays_from_the_last_place_to_the_first(live_server, live_db, live_env, page):
    for name, (public, private) in SCORES.items():
        record(live_db, name, public, private)
    instructor_in_browser(page, live_server)  # even the instructor's laptop shows the public board
    page.wait_for_url(lambda address: "/login" not in address)
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.goto(live_server + "/projector?exercise=cnn-from-scratch")
    wait_for(page, "document.querySelectorAll('#board-rows tr').length === 4")
    html = page.content()
    for _public, private in SCORES.values():
        assert f"{private:.4f}" not in html and f"{private:.3f}" not in html
    assert page.is_hidden("#revealed-badge")
    shot(page, "projector-before-reveal")
    page.evaluate(RECORD_SHOWN)
    workshop("event", "reveal", "cnn-from-scratch", env=live_env)
    wait_for(page, "window.__shown.length >= 2")
    shot(page, "projector-revealing")
    wait_for(page, "window.__shown.length === 4")
    assert page.evaluate("window.__shown") == PRIVATE_ORDER[::-1]  # the last place first
    rows = [page.inner_text(f"#board-rows tr:nth-child({n})").split("\t") for n in range(1, 5)]
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [
        ("1", "Cy", "0.9333", "▲2"),
        ("2", "Bo", "0.7422", "="),
        ("3", "Di", "0.7044", "▲1"),
        ("4", "Ada", "0.6011", "▼3"),
    ]
    assert page.is_visible("#revealed-badge")
    time.sleep(0.8)  # the last row's arrival animation
    shot(page, "projector-after-reveal")


def test_the_join_url_and_its_qr_code_are_shown(live_server, live_db, live_env, page):
    import segno

    from server.projector_feed import qr_data_uri

    join_as_viewer(page, live_server)
    workshop("event", "announce", "Pizza at noon in room 2", env=live_env)
    workshop("event", "freeze", env=live_env)
    workshop("event", "deadline", "cnn-from-scratch", "+30m", env=live_env)
    page.goto(live_server + "/projector?exercise=cnn-from-scratch")
    page.wait_for_selector("#announcement", state="visible")
    assert page.inner_text("#join-url") == PUBLIC_URL
    assert page.get_attribute("#qr", "src") == qr_data_uri(PUBLIC_URL)
    assert qr_data_uri(PUBLIC_URL) == segno.make(PUBLIC_URL, error="m").svg_data_uri(
        scale=10, border=2, dark="#000", light="#fff"
    )
    assert page.evaluate("document.getElementById('qr').naturalWidth") > 100  # the browser drew it
    assert page.is_visible("#frozen-badge") and "Pizza at noon" in page.inner_text("#announcement")
    countdown = page.inner_text("#countdown")
    assert countdown.startswith(("30:", "29:")), countdown
    time.sleep(1.2)
    assert page.inner_text("#countdown") != countdown  # it ticks
    shot(page, "projector-frozen-announcement")


def test_without_an_exercise_the_projector_rotates_through_those_with_scores(live_server, live_db, page):
    """Every 20 s the next exercise with results; exercises without any are skipped (a fake clock, no waiting)."""
    make_submission(live_db, make_participant(live_db, "Ada"), status="done", public_score=0.7, private_score=0.6)
    bo = make_participant(live_db, "Bo")
    make_submission(live_db, bo, slug="fine-tuning", status="done", public_score=0.8, private_score=0.5)
    join_as_viewer(page, live_server)
    page.clock.install()
    page.goto(live_server + "/projector")
    wait_for(page, "document.querySelectorAll('#board-rows tr').length === 1")
    titles = [page.inner_text("#exercise-title")]
    for _ in range(3):
        page.clock.fast_forward(21_000)
        wait_for(page, f"document.getElementById('exercise-title').innerText !== {titles[-1]!r}")
        wait_for(page, "document.querySelectorAll('#board-rows tr').length === 1")
        titles.append(page.inner_text("#exercise-title"))
    assert len(set(titles)) == 2, titles  # the two exercises with results, in turn; none of the three others
    assert titles[0] == titles[2] and titles[1] == titles[3]
    assert any(title.startswith("Fine-tuning") for title in titles), titles
