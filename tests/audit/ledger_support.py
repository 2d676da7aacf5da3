"""Tools the ledger tests share: an attacker who edits the database behind the application's back,
and small readers of the ledger tables.

The attacker works outside the application, the way someone with the database's own rights would:
on SQLite with the standard-library ``sqlite3`` module on the file, on PostgreSQL with ``psql`` as the
superuser, switching the append-only triggers off for its session (``session_replication_role``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.ledger import canonical_event_bytes, chain_digest
from app.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from app.context import AppContext
from tests.support.pgserver import PostgresServer

SQLITE_PREFIX = "sqlite+aiosqlite:///"
# Every column of audit_events except seq, in the order the swap and forge helpers write them.
CONTENT_COLUMNS = (
    "at",
    "actor_id",
    "actor_roles",
    "terminal_id",
    "address",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "details",
    "request_id",
    "prev_hash",
    "hash",
)


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("no booleans in the ledger tables")
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Attacker:
    """Runs SQL directly against the database with the rights of its owner (triggers off on PostgreSQL)."""

    def __init__(self, *, sqlite_path: Path | None = None, pg: PostgresServer | None = None, db: str = ""):
        self._sqlite_path = sqlite_path
        self._pg = pg
        self._db = db

    @classmethod
    def for_test(cls, backend: str, database_url: str, request: pytest.FixtureRequest) -> Attacker:
        if backend == "sqlite":
            return cls(sqlite_path=Path(database_url.removeprefix(SQLITE_PREFIX)))
        server: PostgresServer = request.getfixturevalue("pg_server")
        return cls(pg=server, db=database_url.rsplit("/", 1)[1])

    def execute(self, *statements: str) -> None:
        """All statements in one transaction."""
        if self._sqlite_path is not None:
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in statements:
                    conn.execute(statement)
                conn.execute("COMMIT")
            finally:
                conn.close()
            return
        assert self._pg is not None
        # One psql -c string is one implicit transaction; replica mode skips ordinary triggers.
        self._pg.psql("SET session_replication_role = replica; " + "; ".join(statements), database=self._db)

    def set_event(self, seq: int, **values: Any) -> None:
        assignments = ", ".join(f"{column} = {sql_literal(value)}" for column, value in values.items())
        self.execute(f"UPDATE audit_events SET {assignments} WHERE seq = {int(seq)}")

    def insert_event_statement(self, seq: int, row: dict[str, Any]) -> str:
        columns = ("seq", *CONTENT_COLUMNS)
        values = ", ".join(sql_literal(seq if c == "seq" else row[c]) for c in columns)
        return f"INSERT INTO audit_events ({', '.join(columns)}) VALUES ({values})"


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {"seq": event.seq, **{column: getattr(event, column) for column in CONTENT_COLUMNS}}


def chained_hash(prev_hash: str, row: dict[str, Any], *, seq: int) -> str:
    """What a forger who knows the (public) algorithm computes for a row placed at ``seq``."""
    canonical = canonical_event_bytes(
        seq,
        row["at"],
        row["actor_id"],
        row["actor_roles"],
        row["terminal_id"],
        row["address"],
        row["action"],
        row["object_type"],
        row["object_id"],
        row["outcome"],
        row["details"],
        row["request_id"],
    )
    return chain_digest(bytes.fromhex(prev_hash), canonical).hex()


async def all_events(ctx: AppContext) -> list[AuditEvent]:
    async with ctx.db.read_session() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


async def all_checkpoints(ctx: AppContext) -> list[AuditCheckpoint]:
    async with ctx.db.read_session() as session:
        return list((await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).all())


async def chain_head(ctx: AppContext) -> AuditChainHead:
    async with ctx.db.read_session() as session:
        head = await session.get(AuditChainHead, 1)
        assert head is not None
        return head


def seqs(events: Sequence[AuditEvent]) -> list[int]:
    return [event.seq for event in events]
