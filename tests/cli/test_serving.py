"""`workshop serve` started as root: gunicorn's web workers run as the unprivileged web user, the worker slots as
root in a process of their own, and only those two can read the instance's secrets."""

from __future__ import annotations

import http.cookiejar
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from factories import EVENT_PASSWORD, INSTRUCTOR_PASSWORD
from paths import PROJECT_ROOT

from server import create_app
from server.live_instance import free_port

WEB_USER = "workshop-web"  # the default of WORKSHOP_WEB_USER
TRIVIAL = (PROJECT_ROOT / "bench" / "trivial_submission.py").read_text(encoding="utf-8")
SLUG = "cnn-from-scratch"


def status_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def ids(pid: int, field: str) -> set[int]:
    """The real, effective, saved and file-system ids of a process ("Uid" or "Gid"), or its supplementary groups."""
    return {int(value) for value in status_of(pid)[field].split()}


def children(pid: int) -> dict[int, str]:
    """Live children of ``pid`` with their command lines (found through each process's PPid)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = status_of(int(entry.name))
            if int(status["PPid"]) == pid and not status["State"].startswith("Z"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError, KeyError):
            continue
    return found


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds} s for {what}")


def as_user(user: str, test: str, path: Path) -> bool:
    """``test -r``/``-w`` on ``path`` run by ``user`` with its own group only: the kernel's answer."""
    group = pwd.getpwnam(user).pw_gid
    command = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "test", test, str(path)]
    return subprocess.run(command, check=False).returncode == 0


class Browser:
    """A cookie-keeping HTTP client that fetches each form's CSRF token first, like a browser."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode()

    def post(self, path: str, fields: dict, form_path: str | None = None) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', self.get(form_path or path)).group(1)
        body = urllib.parse.urlencode({"csrf_token": token, **fields}).encode()
        with self.opener.open(self.base + path, data=body, timeout=30) as response:
            return response.geturl()


@pytest.fixture
def private_tmp():
    """A 0700 folder of our own in /tmp: pytest's own (/tmp/pytest-of-root) is reset to 0700 by every pytest
    session that starts meanwhile, which would cut the web user off in the middle of a test."""
    folder = Path(tempfile.mkdtemp(prefix="workshop-serve-user-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def root_serve(private_tmp, data_dir):
    """`workshop init`, the database moved to where instances made before this change kept it, `workshop serve`."""
    instance = private_tmp / "instance"
    shutil.copytree(data_dir, instance / "data")  # the default data folder, instance/data
    env = {
        **os.environ,
        "WORKSHOP_INSTANCE_PATH": str(instance),
        "WORKSHOP_EVENT_PASSWORD": EVENT_PASSWORD,
        "WORKSHOP_INSTRUCTOR_PASSWORD": INSTRUCTOR_PASSWORD,
    }
    env.pop("WORKSHOP_DATA_DIR", None)
    workshop = [sys.executable, "-m", "server.cli"]
    subprocess.run([*workshop, "init"], env=env, check=True, capture_output=True)
    if (instance / "db" / "workshop.db").exists():  # an existing instance: its database in instance/workshop.db
        (instance / "db" / "workshop.db").rename(instance / "workshop.db")
        (instance / "db").rmdir()
    port = free_port()
    log = open(private_tmp / "serve.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [*workshop, "serve", "--port", str(port), "--slots", "1"], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            urllib.request.urlopen(url + "/login", timeout=2)  # noqa: S310 - loopback only
            return True
        except OSError:
            assert server.poll() is None, (private_tmp / "serve.log").read_text()
            return False

    wait_for(up, 120, "the server to answer")
    yield server, url, instance
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=30)
    log.close()


@pytest.mark.slow
@pytest.mark.sandbox
def test_serve_as_root_runs_web_workers_unprivileged_and_slots_as_root(root_serve):
    server, url, instance = root_serve
    web = pwd.getpwnam(WEB_USER)
    assert web.pw_uid != 0 and web.pw_gid != 0

    def both_started():  # the web worker boots first; the slots' process starts when gunicorn is ready
        uids = {pid: ids(pid, "Uid") for pid in children(server.pid)}
        return uids if sorted(min(value) for value in uids.values()) == [0, web.pw_uid] else None

    try:
        uids = wait_for(both_started, 60, "a web worker and a worker slots' process under serve")
    except AssertionError:
        uids = {pid: ids(pid, "Uid") for pid in children(server.pid)}
        raise AssertionError(f"want a web worker as uid {web.pw_uid} and the slots as root; uids: {uids}") from None
    web_workers = [pid for pid, uid in uids.items() if uid != {0}]
    slot_processes = [pid for pid, uid in uids.items() if uid == {0}]
    assert ids(web_workers[0], "Uid") == {web.pw_uid}
    assert ids(web_workers[0], "Gid") == {web.pw_gid}
    assert 0 not in ids(web_workers[0], "Groups")  # no supplementary group kept from root
    assert len(web_workers) == 1 and len(slot_processes) == 1, uids

    # a participant joins (the web user writes the database) and a submission is graded by the root slots
    browser = Browser(url)
    password = "personal-pass-1"
    fields = {"event_password": EVENT_PASSWORD, "display_name": "Ada", "password": password}
    assert browser.post("/join", {**fields, "password_confirm": password}).endswith("/")
    location = browser.post(f"/exercises/{SLUG}/submit", {"code": TRIVIAL}, f"/exercises/{SLUG}")
    submission = int(re.search(r"/submissions/(\d+)", location).group(1))

    def finished():
        state = json.loads(browser.get(f"/submissions/{submission}.json"))
        return state if state["status"] in ("done", "failed", "cancelled") else None

    state = wait_for(finished, 300, "the submission to be graded")
    assert state["status"] == "done", state
    assert 0.0 <= state["public_score"] <= 1.0

    # the instructor rescores it from the page: the web user reads the predictions the root slots kept
    instructor = Browser(url)
    instructor.post("/instructor/login", {"password": INSTRUCTOR_PASSWORD})
    page = instructor.get(f"/instructor/submissions/{submission}")
    assert 'id="predictions-link"' in page and "may not read them" not in page
    landed = instructor.post(
        f"/instructor/submissions/{submission}/action", {"action": "rescore"}, f"/instructor/submissions/{submission}"
    )
    assert landed.endswith(f"/instructor/submissions/{submission}")
    assert 'id="verdicts"' in instructor.get(f"/instructor/submissions/{submission}")  # the old one, kept

    # the instance made before the change keeps working: its database, at its old path, holds the new participant
    with sqlite3.connect(instance / "workshop.db") as db:
        assert db.execute("SELECT display_name FROM participants").fetchall() == [("Ada",)]
    database = (instance / "workshop.db").resolve()
    for path in (instance, instance / "secret_key", database, database.parent):
        assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, f"{path} is open to other users"
    assert as_user(WEB_USER, "-r", instance / "secret_key") and as_user(WEB_USER, "-r", database)
    assert as_user(WEB_USER, "-w", database) and as_user(WEB_USER, "-w", database.parent)
    assert not as_user("nobody", "-r", instance / "secret_key") and not as_user("nobody", "-r", database)

    # the slots are supervised: killed, they come back as root; serve stops them when it stops
    os.kill(slot_processes[0], signal.SIGKILL)

    def new_slot_process():
        found = [pid for pid in children(server.pid) if pid != slot_processes[0] and ids(pid, "Uid") == {0}]
        return found[0] if found else None

    restarted = wait_for(new_slot_process, 60, "the worker slots' process to be started again")
    server.terminate()
    server.wait(timeout=30)
    assert not Path(f"/proc/{restarted}").exists() or status_of(restarted)["State"].startswith("Z")


@pytest.mark.sandbox  # root: creates the web user, setpriv
def test_closed_folders_above_what_the_web_user_needs_open_to_its_group_only(private_tmp):
    from server.serving.reach import Need, grant_needs
    from server.serving.users import ensure_web_user

    user = ensure_web_user(WEB_USER)
    closed = private_tmp / "closed"
    (closed / "inner").mkdir(parents=True)
    needed = closed / "inner" / "file.txt"
    needed.write_text("x")
    closed.chmod(0o700)
    assert not as_user(WEB_USER, "-r", needed)
    notes = grant_needs(user, [Need(needed, os.R_OK)])
    assert any(note.startswith(f"{closed}: search (x) for group {WEB_USER}") for note in notes), notes
    assert as_user(WEB_USER, "-r", needed)
    assert not as_user("nobody", "-r", needed)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o710  # the group bits show the ACL mask: search only
    assert grant_needs(user, [Need(needed, os.R_OK)]) == []  # idempotent


@pytest.mark.sandbox  # root: creates the web user
@pytest.mark.parametrize("where", ["instance", "project"])
def test_a_database_that_shares_its_folder_is_refused(tmp_path, monkeypatch, where):
    """The web user writes in the database's folder (SQLite's journal): in the instance folder it could create
    config.py, which root executes; in a folder with modules it could replace them."""
    from server.serving import ServeError, prepare_instance
    from server.serving.users import ensure_web_user

    instance = tmp_path / "instance"
    folder = instance if where == "instance" else tmp_path / "project"
    folder.mkdir()
    if where == "project":
        (folder / "flask.py").write_text("")  # python -m from there imports it before the real Flask
    monkeypatch.setenv("WORKSHOP_INSTANCE_PATH", str(instance))
    app = create_app({"DATABASE_URL": f"sqlite:///{folder / 'events.db'}", "DATA_DIR": str(tmp_path / "none")})
    mode = stat.S_IMODE(folder.stat().st_mode)
    with pytest.raises(ServeError, match="folder of its own"):
        prepare_instance(app, ensure_web_user(WEB_USER))
    assert not (folder / "events.db").exists()
    if where == "project":
        assert stat.S_IMODE(folder.stat().st_mode) == mode  # left alone


@pytest.mark.sandbox  # root: creates the web user, setpriv
def test_the_web_user_reads_kept_predictions_written_by_root_and_nobody_else_does(private_tmp, monkeypatch):
    """A root serve: the slots (root) keep each job's predictions, the web workers rescore from them."""
    from grader.grading import write_predictions
    from server.kept import predictions_path, share_with_web_group
    from server.serving import prepare_instance
    from server.serving.users import ensure_web_user

    user = ensure_web_user(WEB_USER)
    monkeypatch.setenv("WORKSHOP_INSTANCE_PATH", str(private_tmp / "instance"))
    app = create_app({"DATA_DIR": str(private_tmp / "none")})
    earlier = predictions_path(app, 1)  # kept before this serve: 0600, as the grader writes them
    write_predictions({"a": 0.25}, earlier)
    assert not as_user(WEB_USER, "-r", earlier)
    prepare_instance(app, user)
    assert as_user(WEB_USER, "-r", earlier) and not as_user("nobody", "-r", earlier)
    later = predictions_path(app, 2)  # kept while serving
    write_predictions({"a": 0.75}, later)
    share_with_web_group(later)
    assert as_user(WEB_USER, "-r", later) and not as_user("nobody", "-r", later)
    assert not as_user(WEB_USER, "-w", later) and not as_user(WEB_USER, "-w", later.parent)
