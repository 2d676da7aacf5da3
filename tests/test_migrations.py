"""One linear migration history: upgrade to head and downgrade to base on SQLite and PostgreSQL,
and the models match what the migrations build (no drift)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrate import alembic_config, downgrade, upgrade
from app.models_registry import metadata
from tests.support.pgserver import PostgresServer


def _fresh_url(backend: str, tmp_path: Path, pg_server: PostgresServer | None, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    assert pg_server is not None
    pg_server.create_database(name)
    return pg_server.dsn(name)


async def _tables_and_drift(url: str) -> tuple[set[str], list[object]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def _inspect(sync_conn):  # type: ignore[no-untyped-def]
                tables = set(inspect(sync_conn).get_table_names())
                drift = compare_metadata(MigrationContext.configure(sync_conn), metadata)
                return tables, drift

            return await conn.run_sync(_inspect)
    finally:
        await engine.dispose()


def test_history_is_linear() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade(backend: str, tmp_path: Path, request) -> None:  # type: ignore[no-untyped-def]
    pg = request.getfixturevalue("pg_server") if backend == "postgresql" else None
    url = _fresh_url(backend, tmp_path, pg, "migrations_roundtrip")
    upgrade(url)
    tables, drift = asyncio.run(_tables_and_drift(url))
    assert {"audit_events", "audit_chain_head", "users", "terminals", "auth_sessions"} <= tables
    assert drift == [], f"models and migrations differ: {drift}"
    downgrade(url)
    tables, _ = asyncio.run(_tables_and_drift(url))
    assert tables <= {"alembic_version"}
    upgrade(url)
    tables, drift = asyncio.run(_tables_and_drift(url))
    assert "audit_events" in tables
    assert drift == []
