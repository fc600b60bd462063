"""Alembic migrations and the models never drift apart, and a database made by an older revision upgrades."""

from __future__ import annotations

import sqlite3

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from server.db import alembic_config
from server.models import Base


def test_the_migrations_build_exactly_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'head.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_a_first_revision_database_keeps_its_rows_through_the_upgrade(tmp_path):
    path = tmp_path / "old.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "0001")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO participants (display_name, name_key, password_hash, created_at) "
            "VALUES ('Ada', 'ada', 'hash', '2026-12-01 10:00:00')"
        )
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT display_name, api_token_hash FROM participants").fetchall() == [("Ada", None)]
    command.downgrade(alembic_config(f"sqlite:///{path}"), "0001")
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(participants)")]
    assert "api_token_hash" not in columns and "display_name" in columns
