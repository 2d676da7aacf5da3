"""Engine, sessions and the declarative base (SQLAlchemy 2, async).

SQLite (embedded default) runs in WAL mode and starts every transaction with ``BEGIN IMMEDIATE``:
the writer lock is what serialises the audit chain head there, and taking it up front means a
transaction never fails half-way with SQLITE_BUSY when it turns from reading to writing.
PostgreSQL serialises the chain head with a row lock instead (see app/audit/ledger.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


RowT = TypeVar("RowT", bound=Base)


async def lock_or_create(
    session: AsyncSession, model: type[RowT], key: dict[str, Any], defaults: dict[str, Any]
) -> RowT:
    """The row whose primary key is ``key``, locked for update; inserted first with ``defaults`` if absent.

    Counters (inquiry numbers, list sequences) are created by whoever needs them first, and the first
    callers race: on PostgreSQL there is nothing to lock yet, and a plain INSERT would fail the loser with a
    unique violation — a 500. INSERT ... ON CONFLICT DO NOTHING lets one win; the others then wait on the
    winner's row lock. (On SQLite the writer lock already serialises them.)
    """
    row = await session.get(model, key, with_for_update=True)
    if row is None:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(model).values(**key, **defaults).on_conflict_do_nothing())
        row = await session.get(model, key, with_for_update=True, populate_existing=True)
        assert row is not None
    return row


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps naive UTC text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(
    url: str, *, sqlite_busy_timeout_ms: int = 30_000, sqlite_begin: str = "BEGIN IMMEDIATE", **kwargs: Any
) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": sqlite_busy_timeout_ms / 1000}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite would otherwise begin lazily and deferred).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql(sqlite_begin)

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


class Database:
    """One engine and its session factory. Sessions carry ``info`` that the ledger hook reads."""

    def __init__(
        self,
        url: str,
        *,
        session_info: dict[str, Any] | None = None,
        install_hooks: Callable[[type[Session]], None] | None = None,
        sqlite_busy_timeout_ms: int = 30_000,
        **engine_kwargs: Any,
    ) -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_busy_timeout_ms=sqlite_busy_timeout_ms, **engine_kwargs)
        # A subclass per Database so commit hooks belong to this instance only.
        session_class: type[Session] = type("ShokaiSession", (Session,), {})
        if install_hooks is not None:
            install_hooks(session_class)
        self.sessionmaker = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            sync_session_class=session_class,
            info=dict(session_info or {}),
        )
        # Long reads (ledger streams, exports) must not hold SQLite's writer lock: they get a deferred
        # BEGIN on their own engine. PostgreSQL readers never block writers, so they share the engine.
        self.read_engine = (
            make_engine(url, sqlite_busy_timeout_ms=sqlite_busy_timeout_ms, sqlite_begin="BEGIN")
            if url.startswith("sqlite")
            else self.engine
        )
        self.read_sessionmaker = async_sessionmaker(
            self.read_engine, expire_on_commit=False, info=dict(session_info or {})
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reading only (it has no ledger hook, so it cannot append events)."""
        async with self.read_sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
