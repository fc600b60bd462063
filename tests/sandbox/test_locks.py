"""Slot locks cannot be hijacked: a folder only their owner can write, lock files opened without following links.

Real files, real flock, real processes (one of them an unprivileged uid); nothing is mocked.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from paths import PROJECT_ROOT

from grader.sandbox.locks import SlotLock

pytestmark = [pytest.mark.sandbox]  # root: chown, setpriv

OTHER_UID = 61983  # an unprivileged uid no test runs jobs as


def _attempt(action) -> Exception | None:
    try:
        action()
    except Exception as error:  # noqa: BLE001 - the test inspects whatever was raised
        return error
    return None


@pytest.fixture
def lock_dir(tmp_path) -> Path:
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def precious(tmp_path) -> Path:
    """A file a planted symlink points at: opening the lock through the link would truncate it."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    return target


def test_as_root_the_default_lock_folder_is_root_owned_and_closed(monkeypatch):
    assert os.geteuid() == 0, "the sandbox suite runs as root"
    monkeypatch.delenv("WORKSHOP_SLOT_LOCK_DIR", raising=False)
    slot = SlotLock()
    uid = slot.acquire()
    try:
        folder = os.lstat(slot.lock_dir)
        assert not str(slot.lock_dir).startswith(tempfile.gettempdir()), slot.lock_dir
        assert stat.S_ISDIR(folder.st_mode) and folder.st_uid == 0
        assert stat.S_IMODE(folder.st_mode) & 0o022 == 0, oct(folder.st_mode)
        lock = os.lstat(slot.lock_dir / f"uid-{uid}.lock")
        assert stat.S_ISREG(lock.st_mode) and lock.st_uid == 0 and stat.S_IMODE(lock.st_mode) == 0o600
    finally:
        slot.release()


def test_a_symlink_planted_as_the_lock_file_is_not_followed(lock_dir, precious):
    (lock_dir / "uid-61000.lock").symlink_to(precious)
    error = _attempt(SlotLock(lock_dir=lock_dir).acquire)
    assert precious.read_text() == "keep me", "the slot lock followed a planted symlink and truncated its target"
    assert error is not None and "symbolic link" in str(error), error


def test_a_symlink_planted_as_a_given_uids_lock_is_not_followed(lock_dir, precious):
    (lock_dir / f"uid-{OTHER_UID}.lock").symlink_to(precious)
    error = _attempt(SlotLock(lock_dir=lock_dir, uid=OTHER_UID).acquire)
    assert precious.read_text() == "keep me", "the uid claim followed a planted symlink and truncated its target"
    assert error is not None and "symbolic link" in str(error), error


def test_one_lock_guards_a_uid_a_slot_holding_it_runs_at_once_and_another_thread_waits(lock_dir):
    """The slot's claim and the sandbox's per-run claim are one lock file: no second mechanism to drift."""
    with SlotLock(lock_dir=lock_dir) as uid:
        with SlotLock(lock_dir=lock_dir, uid=uid) as again:  # the sandbox run inside the slot: re-entrant
            assert again == uid
        assert sorted(path.name for path in lock_dir.iterdir()) == [f"uid-{uid}.lock"]
        got = threading.Event()

        def other_thread() -> None:
            with SlotLock(lock_dir=lock_dir, uid=uid):
                got.set()

        waiter = threading.Thread(target=other_thread)
        waiter.start()
        assert not got.wait(0.5), "another thread claimed a uid the slot still holds"
    assert got.wait(10), "the waiting thread did not get the uid once the slot let it go"
    waiter.join()


def test_a_lock_folder_that_is_a_symlink_is_refused(tmp_path, lock_dir):
    link = tmp_path / "link-to-locks"
    link.symlink_to(lock_dir)
    error = _attempt(SlotLock(lock_dir=link).acquire)
    assert error is not None and "not a real directory" in str(error), error
    assert list(lock_dir.iterdir()) == []


def test_a_lock_folder_owned_by_another_uid_is_refused(lock_dir):
    os.chown(lock_dir, OTHER_UID, OTHER_UID)
    error = _attempt(SlotLock(lock_dir=lock_dir).acquire)
    assert error is not None and f"owner uid {OTHER_UID}" in str(error), error
    assert list(lock_dir.iterdir()) == [], "a lock file was made in a folder another user controls"


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o720])
def test_a_lock_folder_others_can_write_is_refused(lock_dir, mode):
    os.chmod(lock_dir, mode)
    error = _attempt(SlotLock(lock_dir=lock_dir).acquire)
    assert error is not None and "writable by nobody else" in str(error), error
    assert list(lock_dir.iterdir()) == []


def test_a_folder_above_that_others_can_write_is_refused_unless_sticky(tmp_path):
    above = tmp_path / "shared"
    above.mkdir()
    os.chmod(above, 0o777)  # noqa: S103 - the hole under test: anyone could rename our folder away
    error = _attempt(SlotLock(lock_dir=above / "locks").acquire)
    assert error is not None and "could be changed by another user" in str(error), error
    os.chmod(above, 0o1777)  # noqa: S103 - sticky, like /tmp: others cannot rename what is ours
    slot = SlotLock(lock_dir=above / "locks")
    assert slot.acquire() == 61000
    slot.release()
    assert stat.S_IMODE(os.lstat(above / "locks").st_mode) == 0o700


def test_two_slot_locks_get_different_uids(lock_dir):
    first, second = SlotLock(lock_dir=lock_dir), SlotLock(lock_dir=lock_dir)
    try:
        assert (first.acquire(), second.acquire()) == (61000, 61001)
    finally:
        first.release()
        second.release()
    again = SlotLock(lock_dir=lock_dir)
    assert again.acquire() == 61000  # released uids are free again
    again.release()


HOLDER = """
import sys
from pathlib import Path
from grader.sandbox.locks import SlotLock
slot = SlotLock(lock_dir=Path(sys.argv[1]))
print(slot.acquire(), flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


def test_flock_holds_across_processes(lock_dir):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "61000"
        mine = SlotLock(lock_dir=lock_dir)
        assert mine.acquire() == 61001, "another process holds 61000"
        mine.release()
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    after = SlotLock(lock_dir=lock_dir)
    assert after.acquire() == 61000, "the holder exited: its lock is gone with it"
    after.release()


UNPRIVILEGED = """
from grader.sandbox.locks import SlotLock
slot = SlotLock()
try:
    print("UID", slot.acquire(), slot.lock_dir, flush=True)
except Exception as error:
    print("REFUSED", error, flush=True)
"""


def _as_other_uid() -> str:
    argv = ["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", "--"]
    argv += [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n" + UNPRIVILEGED]
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp"}  # noqa: S108 - the per-user default under the real /tmp
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd="/").stdout.strip()


def test_a_user_other_than_root_gets_a_folder_of_its_own():
    folder = Path("/tmp") / f"workshop-slots-{OTHER_UID}"  # noqa: S108 - the documented per-user default
    shutil.rmtree(folder, ignore_errors=True)
    try:
        assert _as_other_uid() == f"UID 61000 {folder}"
        info = os.lstat(folder)
        assert info.st_uid == OTHER_UID and stat.S_IMODE(info.st_mode) == 0o700
        shutil.rmtree(folder)
        folder.mkdir(mode=0o755)  # pre-created by someone else (here root) before the user's first run
        said = _as_other_uid()
        assert said.startswith("REFUSED") and f"must be owned by uid {OTHER_UID}" in said, said
    finally:
        shutil.rmtree(folder, ignore_errors=True)
