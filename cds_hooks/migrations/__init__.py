"""Schema migrations (Alembic, revisions in `versions/`). `labelwise db upgrade` runs them once,
before gunicorn forks its workers; workers only check that the schema is at head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

INITIAL = "0001"
LOCK_ID = 0x1AB31  # PostgreSQL advisory lock held while migrating


def upgrade(engine: Engine) -> None:
    """Bring the database to head in one transaction; concurrent runs wait for each other
    (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) and the later ones find
    nothing to do. Tables made before migrations existed are adopted as revision 0001."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        config = _config(connection)
        tables = set(inspect(connection).get_table_names())
        if "issued_cards" in tables and "alembic_version" not in tables:
            command.stamp(config, INITIAL)
        command.upgrade(config, "head")


def is_at_head(connection: Connection) -> bool:
    current = set(MigrationContext.configure(connection).get_current_heads())
    return current == set(ScriptDirectory.from_config(_config(connection)).get_heads())


def is_empty(connection: Connection) -> bool:
    return not inspect(connection).get_table_names()


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config
