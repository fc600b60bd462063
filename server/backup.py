"""Backup, restore and reset of one instance, and the export as one zip (``workshop backup/restore/reset``).

A backup is one .tar.gz: ``manifest.json`` (format, created_at, database kind, Alembic revision, counts, the
active data set), the database copy (SQLite's online backup API, or ``pg_dump`` in custom format from one
snapshot) and the instance's ``secret_key``, so sessions survive a restore. Data sets and weights stay out:
they are kept in place and can be large; the manifest names the active data set.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from server.db import alembic_config, upgrade_database
from server.errors import WorkshopError
from server.export import export_event
from server.kept import forget_all
from server.models import (
    EventSettings,
    ExerciseControl,
    LoginThrottle,
    NameChange,
    Participant,
    QuotaGrant,
    Submission,
    WorkerSlot,
    utcnow,
)

FORMAT = "workshop-backup"
FORMAT_VERSION = 1
MANIFEST, SECRET = "manifest.json", "secret_key"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
MEMBERS = {MANIFEST, SECRET, *DATABASE_MEMBER.values()}
MAX_SMALL_MEMBER = 1024 * 1024  # manifest and secret key
LAST_BACKUP = "last_backup.json"
RECENT_BACKUP = timedelta(hours=1)
KIND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class BackupError(WorkshopError):
    code = "backup"


def database_kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend not in DATABASE_MEMBER:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {backend}")
    return backend


def sqlite_path(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(path)


# --- export as a zip -------------------------------------------------------------------------------------------


def export_zip(db, exercise_slugs: list[str]) -> io.BufferedRandom:
    """The files of ``export_event`` zipped into an anonymous temporary file (deleted on close), at its start."""
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - the caller streams and closes it
    with tempfile.TemporaryDirectory(prefix="workshop-export-") as folder:
        root = Path(folder)
        export_event(db, exercise_slugs, root)
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, safe_entry_name(path.relative_to(root).as_posix()))
    handle.seek(0)
    return handle


def safe_entry_name(name: str) -> str:
    """An archive entry name that stays inside the folder it is unpacked in."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(part in ("", ".", "..") for part in parts):
        raise BackupError(f"unsafe name in an archive: {name!r}")
    return name


# --- backup ----------------------------------------------------------------------------------------------------


def backup(app: Flask, target: Path) -> dict:
    """Write a backup of the running instance to ``target`` (atomically, mode 0600); return its manifest."""
    url = app.config["DATABASE_URL"]
    kind = database_kind(url)
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=target.parent) as folder:
        work = Path(folder)
        copy = work / DATABASE_MEMBER[kind]
        facts = copy_sqlite(url, copy) if kind == "sqlite" else dump_postgresql(url, copy)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": utcnow().isoformat(timespec="seconds") + "Z",
            "database": kind,
            **facts,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (work / SECRET).write_text(app.config["SECRET_KEY"], encoding="utf-8")
        partial = work / "backup.tar.gz"
        with tarfile.open(partial, "w:gz") as archive:
            for name in (MANIFEST, SECRET, copy.name):
                archive.add(work / name, arcname=name)
        os.chmod(partial, 0o600)  # password hashes and the secret key
        os.replace(partial, target)
    record_backup(app, target, manifest)
    return manifest


FACTS_SQL = {
    "alembic_revision": "SELECT version_num FROM alembic_version",
    "participants": "SELECT count(*) FROM participants",
    "submissions": "SELECT count(*) FROM submissions",
    "active_dataset": "SELECT active_dataset FROM event_settings WHERE id = 1",
}


def copy_sqlite(url: str, copy: Path) -> dict:
    """A consistent copy with SQLite's online backup API (writers keep going meanwhile); facts read from it."""
    database = sqlite_path(url)
    if not database.is_file():
        raise BackupError(f"no database at {database}: run `workshop init` first")
    source = sqlite3.connect(database, timeout=30)
    target = sqlite3.connect(copy)
    try:
        source.backup(target, pages=1024)
        return {name: (target.execute(sql).fetchone() or [None])[0] for name, sql in FACTS_SQL.items()}
    except sqlite3.Error as error:
        raise BackupError(f"the database at {database} could not be copied: {error}") from None
    finally:
        target.close()
        source.close()


def postgresql_args(url: str) -> tuple[str, dict]:
    """A libpq URI without the password (it goes in PGPASSWORD, never on a command line) and the environment."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def postgresql_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed: install the package postgresql-client (apt-get install postgresql-client), "
            "in the major version of the server or newer"
        )
    return path


def dump_postgresql(url: str, copy: Path) -> dict:
    """``pg_dump`` in custom format from an exported snapshot, so the facts and the dump see the same data."""
    pg_dump = postgresql_tool("pg_dump")
    uri, env = postgresql_args(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            facts = {name: connection.execute(text(sql)).scalar() for name, sql in FACTS_SQL.items()}
            command = [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={copy}", f"--dbname={uri}"]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
            connection.rollback()
    finally:
        engine.dispose()
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    return facts


def record_backup(app: Flask, target: Path, manifest: dict) -> None:
    """instance/last_backup.json: when and where the last backup went (``workshop reset`` asks for a recent one)."""
    record = {"at": manifest["created_at"], "file": str(target), "database": database_label(app)}
    folder = Path(app.instance_path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LAST_BACKUP).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def database_label(app: Flask) -> str:
    return make_url(app.config["DATABASE_URL"]).render_as_string(hide_password=True)


def last_backup(app: Flask) -> dict | None:
    """The record of the last backup of this instance's database, or None."""
    try:
        record = json.loads((Path(app.instance_path) / LAST_BACKUP).read_text(encoding="utf-8"))
        record["at"] = datetime.fromisoformat(record["at"].removesuffix("Z"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record if record.get("database") == database_label(app) else None


# --- restore ---------------------------------------------------------------------------------------------------


def read_backup(source: Path) -> tuple[tarfile.TarFile, dict]:
    """The open archive and its manifest; refuses a file that is not a backup of a format this version reads."""
    not_backup = f"{source} is not a workshop backup (make one with `workshop backup FILE`)"
    try:
        archive = tarfile.open(source, "r:gz")
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"{not_backup}: {error}") from None
    members = {member.name: member for member in archive.getmembers()}
    strange = [name for name, member in members.items() if name not in MEMBERS or not member.isfile()]
    manifest_member = members.get(MANIFEST)
    if strange or manifest_member is None or manifest_member.size > MAX_SMALL_MEMBER:
        archive.close()
        raise BackupError(not_backup + (f"; unexpected entries: {', '.join(sorted(strange))}" if strange else ""))
    try:
        manifest = json.loads(archive.extractfile(manifest_member).read())
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        archive.close()
        raise BackupError(not_backup)
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        archive.close()
        raise BackupError(
            f"{source} has backup format {version}, newer than this version reads ({FORMAT_VERSION}): "
            "upgrade workshop-server first"
        )
    return archive, manifest


def check_restorable(app: Flask, archive: tarfile.TarFile, manifest: dict) -> str:
    """The database kind; refuses a kind other than the configured one, or a schema newer than this code."""
    kind = database_kind(app.config["DATABASE_URL"])
    theirs = manifest.get("database")
    if theirs != kind:
        raise BackupError(
            f"this backup holds a {KIND_NAMES.get(theirs, theirs)} database, but this instance is configured for "
            f"{KIND_NAMES[kind]} (WORKSHOP_DATABASE_URL): restore it on an instance of the same kind"
        )
    if DATABASE_MEMBER[kind] not in archive.getnames():
        raise BackupError(f"the backup lacks its database copy ({DATABASE_MEMBER[kind]})")
    revision = manifest.get("alembic_revision")
    scripts = ScriptDirectory.from_config(alembic_config(app.config["DATABASE_URL"]))
    try:
        known = revision is not None and scripts.get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise BackupError(f"the backup's schema ({revision}) is unknown to this version: upgrade workshop-server")
    return kind


def restore(app: Flask, source: Path) -> dict:
    """Bring the instance back to the backup: database, then the secret key; returns the manifest."""
    archive, manifest = read_backup(source)
    with archive:
        kind = check_restorable(app, archive, manifest)
        member = archive.extractfile(DATABASE_MEMBER[kind])
        app.extensions["db_engine"].dispose()
        if kind == "sqlite":
            replace_sqlite(sqlite_path(app.config["DATABASE_URL"]), member)
        else:
            restore_postgresql(app.config["DATABASE_URL"], member)
        if SECRET in archive.getnames() and archive.getmember(SECRET).size <= MAX_SMALL_MEMBER:
            write_secret_key(Path(app.instance_path), archive.extractfile(SECRET).read().decode().strip())
    upgrade_database(app)  # a backup of an older schema comes up to this version's
    return manifest


def replace_sqlite(database: Path, member) -> None:
    """Write the copy next to the database, check it, then rename it over; refuses while the file is open."""
    database.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".restore-", suffix=".db", dir=database.parent)
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(member, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        check = sqlite3.connect(partial)
        try:
            verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        if verdict != "ok":
            raise BackupError(f"the database copy in the backup is damaged: {verdict}")
        release_sqlite(database)
        os.replace(partial, database)
    finally:
        partial.unlink(missing_ok=True)
    fsync_folder(database.parent)


def release_sqlite(database: Path) -> None:
    """Fold the write-ahead log into the old file; a log left after our last connection closes means another
    process (a running server) has the database open, and renaming under it would lose its writes."""
    if not database.exists():
        return
    connection = sqlite3.connect(database, timeout=30)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    wal = database.with_name(database.name + "-wal")
    if wal.exists():
        raise BackupError("the database is open in another process: stop `workshop serve` and workers, then restore")
    database.with_name(database.name + "-shm").unlink(missing_ok=True)


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def restore_postgresql(url: str, member) -> None:
    """``pg_restore --clean`` in one transaction: all of the backup, or nothing changed."""
    pg_restore = postgresql_tool("pg_restore")
    uri, env = postgresql_args(url)
    with tempfile.NamedTemporaryFile(prefix="workshop-restore-", suffix=".pgdump") as dump:
        shutil.copyfileobj(member, dump, 1024 * 1024)
        dump.flush()
        command = [pg_restore, "--clean", "--if-exists", "--no-owner", "--single-transaction", f"--dbname={uri}"]
        result = subprocess.run([*command, dump.name], env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was changed): {result.stderr.strip()}")


def write_secret_key(instance: Path, key: str) -> None:
    """instance/secret_key (0600), written beside and renamed over, so sessions signed before the backup work."""
    if not key:
        return
    instance.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".secret-", dir=instance)
    with os.fdopen(handle, "w") as out:
        out.write(key)
    os.replace(name, instance / "secret_key")


# --- reset -----------------------------------------------------------------------------------------------------

RESET_TABLES = (QuotaGrant, NameChange, Submission, Participant, LoginThrottle, WorkerSlot, ExerciseControl)


def reset_event(app: Flask, db, force: bool = False) -> dict[str, int]:
    """Remove the event's people and results for the next event; passwords, title, exercises, data sets and
    weights stay. Refuses without a backup of this database in the last hour unless ``force``."""
    if not force:
        record = last_backup(app)
        if record is None or utcnow() - record["at"] > RECENT_BACKUP:
            made = "none recorded" if record is None else f"the last was at {record['at']:%Y-%m-%d %H:%M} UTC"
            raise BackupError(
                f"make a backup first (`workshop backup FILE`; {made}), or pass --force to reset without one"
            )
    running = db.scalar(select(func.count(Submission.id)).where(Submission.status == "running")) or 0
    if running and not force:
        raise BackupError(
            f"{running} job(s) are running now: wait for them or cancel them on the instructor's overview, "
            "then reset (or pass --force)"
        )
    counts = {model.__tablename__: db.scalar(select(func.count()).select_from(model)) for model in RESET_TABLES}
    for model in RESET_TABLES:
        db.execute(delete(model))
    settings = db.get(EventSettings, 1)
    if settings is not None:
        settings.announcement = None
        settings.freeze_at = None
    db.commit()
    counts["kept_predictions"] = forget_all(app)  # ids start again from 1 on SQLite: none may inherit these
    return counts
