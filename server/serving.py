"""`workshop serve` started as root: the web app drops root, the worker slots keep it.

Only the worker slots need root (they start bubblewrap). So, when ``workshop serve`` runs as root:

* the worker slots run as root in a child process of their own (the same code as ``workshop worker``),
  supervised by serve: restarted when it dies, stopped when serve stops;
* gunicorn's web workers run as an unprivileged user, ``WORKSHOP_WEB_USER`` (created as a system user
  without home or login shell when missing), switched by gunicorn's own ``user``/``group`` settings,
  with no supplementary group left over from root;
* the instance folder lets each do its part and nobody else read secrets (see ``prepare_instance``).

Not started as root, nothing of this applies: everything runs as the invoking user, slots inside the web
process. ``WORKSHOP_WEB_USER=root`` keeps the web app as root too (not recommended; it says so).
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import json
import logging
import os
import pkgutil
import pwd
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy.engine import make_url

from server.config import PROJECT_ROOT

log = logging.getLogger("gunicorn.error")  # configured by gunicorn by the time the supervisor speaks


class ServeError(RuntimeError):
    """serve cannot split privileges safely here; the message says what to do."""


@dataclass(frozen=True)
class WebUser:
    name: str
    uid: int
    gid: int


def web_user_for(app: Flask) -> WebUser | None:
    """The user gunicorn's web workers become, or None where nothing changes (serve not started as root)."""
    if os.geteuid() != 0:
        return None
    name = str(app.config.get("WEB_USER") or "workshop-web")
    user = ensure_web_user(name)
    if user.uid == 0:
        print(
            f"WARNING: WORKSHOP_WEB_USER={name} keeps the web app running as root: a flaw in the web app would "
            "then be a root compromise. Unset it to run the web workers as an unprivileged user.",
            file=sys.stderr,
        )
        return None
    return user


def ensure_web_user(name: str) -> WebUser:
    """The named user; created as a system user (own group, no home, no login shell) when missing (root only)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_system_user(name)
    return WebUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    message = ""
    for _attempt in range(20):  # another serve may be creating it, or hold the lock on /etc/passwd
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            message = result.stderr.strip()
        except OSError as error:
            raise ServeError(f"cannot create the web user {name!r}: {error}; create it yourself") from None
        try:
            return pwd.getpwnam(name)
        except KeyError:
            time.sleep(0.25)
    raise ServeError(f"cannot create the web user {name!r} with {' '.join(command)}: {message}")


# -- permissions -----------------------------------------------------------------------------------------------

# POSIX ACLs as the kernel stores them in the system.posix_acl_access extended attribute (no setfacl needed).
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED_ID = 0xFFFFFFFF
_PERM_WORDS = {1: "search (x)", 4: "read (r)", 5: "read (r-x)", 6: "read and write (rw)", 7: "full (rwx)"}


def _read_acl(path: Path) -> dict[tuple[int, int], int]:
    """The access ACL of ``path`` as {(tag, id): perms}; the mode bits when it has none."""
    try:
        blob = os.getxattr(path, _ACL_XATTR)
    except OSError as error:
        if error.errno not in (errno.ENODATA, errno.ENOTSUP):
            raise
        mode = os.stat(path).st_mode
        return {
            (_USER_OBJ, _UNDEFINED_ID): (mode >> 6) & 7,
            (_GROUP_OBJ, _UNDEFINED_ID): (mode >> 3) & 7,
            (_OTHER, _UNDEFINED_ID): mode & 7,
        }
    (version,) = struct.unpack_from("<I", blob)
    if version != _ACL_VERSION:
        raise OSError(errno.EINVAL, f"unknown ACL version {version}", str(path))
    entries = {}
    for offset in range(4, len(blob), 8):
        tag, perms, ident = struct.unpack_from("<HHI", blob, offset)
        entries[(tag, ident)] = perms
    return entries


def grant_group(path: Path, gid: int, perms: int) -> bool:
    """Add ``perms`` (4 r, 2 w, 1 x) for group ``gid`` to the access ACL of ``path``; False when it had them."""
    entries = _read_acl(path)
    mask = entries.get((_MASK, _UNDEFINED_ID), entries[(_GROUP_OBJ, _UNDEFINED_ID)])
    current = entries.get((_GROUP, gid), 0)
    if current & perms == perms and mask & perms == perms:
        return False
    entries[(_GROUP, gid)] = current | perms
    entries[(_MASK, _UNDEFINED_ID)] = mask | perms  # widen the mask by what we add, nothing more
    blob = struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", tag, value, ident) for (tag, ident), value in sorted(entries.items())
    )
    os.setxattr(path, _ACL_XATTR, blob)
    return True


def _restrict(path: Path, user: WebUser, mode: int) -> bool:
    """Group = the web group, exact ``mode``; an owner that is the web user becomes root. True when changed."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return False
    owner = 0 if info.st_uid == user.uid else info.st_uid
    changed = False
    if (info.st_uid, info.st_gid) != (owner, user.gid):
        os.chown(path, owner, user.gid)
        changed = True
    if stat.S_IMODE(os.lstat(path).st_mode) != mode:
        os.chmod(path, mode)
        changed = True
    return changed


def _close_to_others(path: Path) -> None:
    """Remove every permission of "other" users (keeps the rest, ACL mask included)."""
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o007:
        os.chmod(path, mode & ~0o007)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def _sqlite_files(database: Path) -> list[Path]:
    return [
        path
        for path in (database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm", "-journal"))
        if path.exists()
    ]


def move_legacy_database(instance: Path, database: Path) -> str | None:
    """Move instance/workshop.db (an instance made before the db/ folder) into instance/db/, leaving a link.

    The web user must create SQLite's journal next to the database, so the database needs a folder of its
    own: the web user must not be able to write in the instance folder (config.py there is executed). The
    link keeps the old path, and every URL naming it, working: SQLite follows it and journals next to the
    real file. Refuses while another process has the database open.
    """
    legacy = instance / "workshop.db"
    if database != legacy or legacy.is_symlink() or not legacy.is_file():
        return None
    target = instance / "db" / "workshop.db"
    if target.exists():
        raise ServeError(f"both {legacy} and {target} exist: keep one (the other is stale) and start again")
    connection = sqlite3.connect(legacy, timeout=1)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")  # needs the only connection: fails while others use it
    except sqlite3.OperationalError as error:
        raise ServeError(
            f"{legacy} is in use by another process ({error}); stop `workshop worker`/`serve` using it and start again"
        ) from None
    finally:
        connection.close()
    leftovers = [path for path in _sqlite_files(legacy) if path != legacy]
    if leftovers:
        raise ServeError(f"{legacy} is in use by another process ({leftovers[0].name} is open); stop it first")
    target.parent.mkdir(mode=0o750, exist_ok=True)
    os.rename(legacy, target)
    os.symlink(Path("db") / "workshop.db", legacy)
    return f"moved the database into its own folder: {target} (the old path {legacy} links to it)"


@dataclass
class Need:
    """A path the web workers must be able to use, with the access they need (os.R_OK | os.W_OK | os.X_OK)."""

    path: Path
    mode: int


def prepare_instance(app: Flask, user: WebUser) -> list[str]:
    """Set owners and modes so that the web user can do its part and other users read no secret; idempotent.

    Layout (``root:web`` means owner root, group the web user's group):

    * instance folder ``root:web 0750`` -- the web user passes, cannot create anything (config.py there
      is executed by every command);
    * ``secret_key`` and ``config.py`` ``root:web 0640``;
    * ``db/`` ``root:web 2770`` and ``db/workshop.db`` (and SQLite's ``-wal``/``-shm``) ``root:web 0660``:
      the web user reads and writes the database and creates its journal; new files keep the group;
    * data sets: readable by the web user (the instructor's data page reads the hidden labels too);
      ``private/`` closed to other users; ``public/`` untouched (the sandbox's unprivileged uids read it);
    * job folders and Keras weights: untouched, only the worker slots (root) use them.

    A SQLite database elsewhere gets the same, provided its folder holds nothing else. Folders above
    these paths that the web user cannot pass (``/root``, pytest's 0700 temporary folders), and data or
    code it cannot read, get the least that works, read or search, for the web group only, as a POSIX
    ACL entry (``getfacl`` shows it, ``setfacl -x g:GROUP PATH`` removes it). Returns what changed.
    """
    notes: list[str] = []
    instance = Path(app.instance_path).absolute()
    instance.mkdir(parents=True, exist_ok=True)
    if _restrict(instance, user, 0o750):
        notes.append(f"instance folder {instance}: group {user.name}, mode 0750")
    for name in ("secret_key", "config.py"):
        if (instance / name).is_file() and _restrict(instance / name, user, 0o640):
            notes.append(f"{instance / name}: group {user.name}, mode 0640")
    needs = [Need(instance, os.X_OK)]
    needs += [Need(instance / name, os.R_OK) for name in ("secret_key", "config.py") if (instance / name).is_file()]
    needs += _database_needs(app, instance, user, notes)
    needs += _data_needs(Path(app.config["DATA_DIR"]).absolute())
    needs += _code_needs(app)
    notes += grant_needs(user, needs)
    return notes


def _database_needs(app: Flask, instance: Path, user: WebUser, notes: list[str]) -> list[Need]:
    database = sqlite_path(app.config["DATABASE_URL"])
    if database is None:
        return []  # PostgreSQL: nothing on disk
    app.extensions["db_engine"].dispose()  # no connection of ours may hold the file while it moves
    moved = move_legacy_database(instance, database)
    if moved:
        notes.append(moved)
    real = database.resolve()
    folder = real.parent
    folder.mkdir(parents=True, exist_ok=True)
    own = {real.name + suffix for suffix in ("", "-wal", "-shm", "-journal")}
    strangers = sorted(path.name for path in folder.iterdir() if path.name not in own)
    if folder == instance.resolve() or strangers:
        # SQLite creates its journal next to the database, so the web user writes in that folder: anything
        # else there (config.py in the instance folder, modules in a project folder) it could replace
        raise ServeError(
            f"the SQLite database {real} shares its folder with other files ({', '.join(strangers[:3])}); the web "
            f"user must be able to write in the database's folder, so give the database a folder of its own "
            f"(the default is {instance / 'db' / 'workshop.db'}) and point WORKSHOP_DATABASE_URL at it"
        )
    changed = _restrict(folder, user, 0o2770)
    files = _sqlite_files(real)
    for path in files:
        changed = _restrict(path, user, 0o660) or changed
    if changed:
        notes.append(f"database {real}: group {user.name}, its folder 2770, its files 0660")
    return [Need(folder, os.R_OK | os.W_OK | os.X_OK), *(Need(path, os.R_OK | os.W_OK) for path in files)]


def _data_needs(data_dir: Path) -> list[Need]:
    """Every folder and file of the data sets, read; the hidden labels closed to other users first."""
    if not data_dir.is_dir():
        return []
    needs = [Need(data_dir, os.R_OK | os.X_OK)]
    for dataset in sorted(data_dir.iterdir()):
        if not dataset.is_dir() or dataset.is_symlink():
            continue
        private = dataset / "private"
        if private.is_dir() and not private.is_symlink():
            _close_to_others(private)
            for path in private.rglob("*"):
                if not path.is_symlink():
                    _close_to_others(path)
        for folder, folders, files in os.walk(dataset):
            needs.append(Need(Path(folder), os.R_OK | os.X_OK))
            needs += [Need(Path(folder) / name, os.R_OK) for name in files]
            folders[:] = [name for name in folders if not (Path(folder) / name).is_symlink()]
    return needs


def _code_needs(app: Flask) -> list[Need]:
    """The interpreter's standard library, the installed packages, our code, templates, static files, exercises."""
    import sysconfig

    folders = {
        Path(os.__file__).parent,
        Path(sysconfig.get_paths()["purelib"]),
        Path(sysconfig.get_paths()["platlib"]),
        PROJECT_ROOT / "server",
        PROJECT_ROOT / "grader",
        Path(app.root_path, app.template_folder or "templates"),
        Path(app.root_path, app.static_folder or "static"),
        Path(app.config["EXERCISES_DIR"]),
    }
    return [Need(folder.absolute(), os.R_OK | os.X_OK) for folder in sorted(folders) if folder.is_dir()]


def grant_needs(user: WebUser, needs: list[Need]) -> list[str]:
    """Ask the kernel, as the web user, what it cannot reach; grant that by ACL to its group; repeat until all pass."""
    notes: list[str] = []
    needs = [Need(need.path.resolve(), need.mode) for need in needs]
    granted: set[tuple[Path, int]] = set()
    for _round in range(64):  # each round passes at least one more folder level
        obstacles = probe_as(user, needs)
        if not obstacles:
            return notes
        for path, mode in obstacles:
            if mode & os.W_OK:  # write access comes only from the database folder's group, set above
                raise ServeError(_cannot_reach(user, path, mode, "serve gives write access to nothing else"))
            if (path, mode) in granted:
                raise ServeError(_cannot_reach(user, path, mode, "an ACL entry did not help"))
            try:
                changed = grant_group(path, user.gid, mode)
            except OSError as error:
                raise ServeError(_cannot_reach(user, path, mode, f"setting an ACL failed: {error.strerror}")) from None
            granted.add((path, mode))
            if changed:
                notes.append(f"{path}: {_PERM_WORDS.get(mode, oct(mode))} for group {user.name} (ACL)")
    raise ServeError(f"the web user {user.name} still cannot reach what it needs after 64 rounds of ACL entries")


def _cannot_reach(user: WebUser, path: Path, mode: int, why: str) -> str:
    return (
        f"the web user {user.name} needs {_PERM_WORDS.get(mode, oct(mode))} on {path} and {why}. Give it yourself "
        f"(for instance `chmod o+x {path}` for a folder), install the project and the instance outside "
        "closed folders such as /root, or set WORKSHOP_WEB_USER=root to keep the web app as root (not recommended)"
    )


def probe_as(user: WebUser, needs: list[Need]) -> list[tuple[Path, int]]:
    """The first obstacle on each needed path, found by a forked child that has become ``user``.

    (folder, X_OK) for a folder above it that the user cannot pass, (path, mode) when the path itself lacks
    the access; nothing for paths that work or do not exist. The kernel decides, ACLs and all.
    """
    paths = [(str(need.path), need.mode) for need in needs]
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        status = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
            found = []
            for path, mode in paths:
                obstacle = _first_obstacle(path, mode)
                if obstacle is not None and obstacle not in found:
                    found.append(obstacle)
            data = json.dumps(found).encode()
            while data:
                data = data[os.write(writer, data) :]
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 65536):
        chunks.append(chunk)
    os.close(reader)
    _pid, wait_status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(wait_status) != 0:
        raise ServeError(f"could not check the folders as the web user {user.name}")
    return [(Path(path), mode) for path, mode in json.loads(b"".join(chunks))]


def _first_obstacle(path: str, mode: int) -> tuple[str, int] | None:
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        folder = os.path.join(*parts[:depth])
        if not os.access(folder, os.X_OK):
            return folder, os.X_OK
    if not os.path.lexists(path):
        return None
    return None if os.access(path, mode) else (path, mode)


# -- the web workers ---------------------------------------------------------------------------------------------

WEB_MODULES = ("zipfile", "zlib", "PIL.Image", "PIL.PngImagePlugin", "grader.data.layout", "grader.starter_kit")


def preload(app: Flask) -> None:
    """Load everything the web workers use before they fork, in case a file turns unreadable to the web user."""
    import server
    from server.jobs import catalog

    for module in pkgutil.walk_packages(server.__path__, "server."):
        if not module.name.startswith("server.migrations"):
            importlib.import_module(module.name)
    for name in WEB_MODULES:
        importlib.import_module(name)
    with app.app_context():
        catalog(app)
        for name in app.jinja_env.list_templates():
            app.jinja_env.get_template(name)


def gunicorn_settings(app: Flask, user: WebUser, slots: int) -> dict:
    """gunicorn settings for a root serve: workers switch to ``user``; ``slots`` slots run as root beside them."""
    supervisor = SlotSupervisor(slots) if slots > 0 else None

    def post_fork(_server, _worker) -> None:
        os.setgroups([])  # gunicorn's switch (setgid, setuid) would keep root's supplementary groups

    def post_worker_init(_worker) -> None:
        if 0 in (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) or 0 in os.getgroups():
            log.critical("the web worker still has root's uid or a root group; refusing to serve")
            os._exit(3)  # gunicorn's WORKER_BOOT_ERROR: the whole server stops
        app.extensions["db_engine"].dispose(close=False)

    def when_ready(_server) -> None:
        if supervisor is not None:
            supervisor.start()

    def on_exit(_server) -> None:
        if supervisor is not None:
            supervisor.stop()

    return {
        "user": user.uid,
        "group": user.gid,
        "initgroups": False,  # gunicorn's initgroups path skips setgid: keep it off, post_fork clears the groups
        "preload_app": True,
        "post_fork": post_fork,
        "post_worker_init": post_worker_init,
        "when_ready": when_ready,
        "on_exit": on_exit,
    }


# -- the worker slots ---------------------------------------------------------------------------------------------


class SlotSupervisor:
    """Keeps one `workshop worker --slots N` child running as root until stopped.

    The child is started with posix_spawn, not subprocess.Popen: Popen waits on a pipe until the child has
    exec'd, and gunicorn's master forks web workers meanwhile, which inherit that pipe and keep Popen
    waiting for as long as they live. gunicorn's master also reaps every child, so the child's exit
    status may be gone: whether it lives is all that is asked.
    """

    def __init__(self, slots: int, stop_timeout: float = 15) -> None:
        self.slots = slots
        self.stop_timeout = stop_timeout
        self.stopping = threading.Event()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "server.serving", "--parent", str(os.getpid()), "--slots", str(self.slots)]

    def start(self) -> None:
        # the thread that starts the child also watches it: the child's parent-death signal follows that thread
        self.thread = threading.Thread(target=self._run, name="slot-process-supervisor", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(self.stop_timeout + 10)

    def _run(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            began = time.monotonic()
            # a session of its own: Ctrl-C in the terminal reaches serve, which then stops the slots in order
            self.pid = os.posix_spawn(sys.executable, self.command(), os.environ, setsid=True)
            log.info("Worker slots (%d) running as root in process %d", self.slots, self.pid)
            while self._alive() and not self.stopping.wait(0.5):
                pass
            if self.stopping.is_set():
                break
            delay = 1.0 if time.monotonic() - began > 60 else min(delay * 2, 30.0)
            log.error("The worker slots' process %d stopped; starting it again in %.0f s", self.pid, delay)
            self.stopping.wait(delay)
        self._terminate()

    def _alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by gunicorn's master
            return False
        return pid == 0

    def _terminate(self) -> None:
        for sig, seconds in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 5.0)):
            if not self._alive():
                return
            if sig == signal.SIGKILL:
                log.warning(
                    "The worker slots' process %d did not stop in %.0f s; killing it", self.pid, self.stop_timeout
                )
            os.kill(self.pid, sig)
            deadline = time.monotonic() + seconds
            while self._alive() and time.monotonic() < deadline:
                time.sleep(0.1)


def _die_with_parent(parent: int) -> None:
    """SIGTERM when serve dies, however it dies; exit now if it already has."""
    PR_SET_PDEATHSIG = 1  # noqa: N806 - the C name
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)


def slot_process_main(argv: list[str]) -> None:
    """Entry point of the slots' child: `workshop worker --slots N`, tied to the serve process that started it."""
    import argparse

    parser = argparse.ArgumentParser(prog="workshop serve (worker slots)")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--slots", type=int, required=True)
    args = parser.parse_args(argv)
    _die_with_parent(args.parent)
    from server.cli import main

    main(["worker", "--slots", str(args.slots)], prog_name="workshop")


if __name__ == "__main__":
    slot_process_main(sys.argv[1:])
