"""Run Alembic migrations from code (the CLI and the test harness use this)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from app.crypto.keyring import Keyring

# The instance's keys, or how to open them when a migration first needs them (most never do).
KeysForMigration = Keyring | Callable[[], Keyring] | None

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str, keyring: KeysForMigration = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    # A migration that seals or opens stored data (0017) uses the instance's keys; none is needed on an
    # empty database.
    config.attributes["keyring"] = keyring
    return config


def upgrade(database_url: str, revision: str = "head", *, keyring: KeysForMigration = None) -> None:
    command.upgrade(alembic_config(database_url, keyring), revision)
    _checkpoint_sqlite(database_url)


def _checkpoint_sqlite(database_url: str) -> None:
    """Write what the migrations changed into the SQLite file itself and empty its write-ahead log.

    Until a checkpoint, the file keeps the pages as they were before (a migration that sealed plain
    notes would leave them readable in a copy of the file) and the log holds the new ones.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    with contextlib.closing(sqlite3.connect(url.database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def downgrade(database_url: str, revision: str = "base", *, keyring: KeysForMigration = None) -> None:
    command.downgrade(alembic_config(database_url, keyring), revision)


async def upgrade_async(
    database_url: str, revision: str = "head", *, keyring: KeysForMigration = None
) -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    await asyncio.to_thread(upgrade, database_url, revision, keyring=keyring)
