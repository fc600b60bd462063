"""Owners, modes and ACLs of the instance, database, data sets and code for a root serve (``prepare_instance``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flask import Flask

from server.config import PROJECT_ROOT
from server.serving.database import move_legacy_database, sqlite_files, sqlite_path
from server.serving.reach import Need, grant_needs
from server.serving.users import ServeError, WebUser


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
    * kept predictions (``WORK_DIR/predictions``) ``root:web 2750``, its files ``0640``: the slots (root) write
      them, the web workers read them to rescore (``server/kept.py`` makes each new file 0640);
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
    needs += _kept_needs(app, user, notes)
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
    files = sqlite_files(real)
    for path in files:
        changed = _restrict(path, user, 0o660) or changed
    if changed:
        notes.append(f"database {real}: group {user.name}, its folder 2770, its files 0660")
    return [Need(folder, os.R_OK | os.W_OK | os.X_OK), *(Need(path, os.R_OK | os.W_OK) for path in files)]


def _kept_needs(app: Flask, user: WebUser, notes: list[str]) -> list[Need]:
    """The kept predictions: the web group reads them (to rescore from the page), other users nothing."""
    kept = Path(app.config["WORK_DIR"]).absolute() / "predictions"
    kept.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = _restrict(kept, user, 0o2750)
    files = [path for path in kept.iterdir() if path.is_file() and not path.is_symlink()]
    for path in files:
        changed = _restrict(path, user, 0o640) or changed
    if changed:
        notes.append(f"kept predictions {kept}: group {user.name}, the folder 2750, its files 0640")
    return [Need(kept, os.R_OK | os.X_OK), *(Need(path, os.R_OK) for path in files)]


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
