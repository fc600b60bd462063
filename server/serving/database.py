"""Where a SQLite database lives, and moving an old instance's database into a folder of its own."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from server.serving.users import ServeError


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def sqlite_files(database: Path) -> list[Path]:
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
    leftovers = [path for path in sqlite_files(legacy) if path != legacy]
    if leftovers:
        raise ServeError(f"{legacy} is in use by another process ({leftovers[0].name} is open); stop it first")
    target.parent.mkdir(mode=0o750, exist_ok=True)
    os.rename(legacy, target)
    os.symlink(Path("db") / "workshop.db", legacy)
    return f"moved the database into its own folder: {target} (the old path {legacy} links to it)"
