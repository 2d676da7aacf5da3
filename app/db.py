"""Engine, sessions and the declarative base (SQLAlchemy 2, async).

SQLite (embedded default) runs in WAL mode and starts every transaction with ``BEGIN IMMEDIATE``:
the writer lock is what serialises the audit chain head there, and taking it up front means a
transaction never fails half-way with SQLITE_BUSY when it turns from reading to writing.
PostgreSQL serialises the chain head with a row lock instead (see app/audit/ledger.py).

Writers of one process also queue on an ``asyncio.Lock`` before ``BEGIN IMMEDIATE`` (:class:`_WriterQueue`):
SQLite's own busy handler makes a waiting writer sleep (up to 100 ms a turn) and so leaves the lock idle
after it is freed, which is where most of the waiting went when many requests write at once. Writers of
other processes still meet SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import DateTime, MetaData, Row, Table, event, insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_only

# The largest integer a BIGINT column (and SQLite's INTEGER) holds. An integer from outside that is
# compared with one must be bounded by it: a larger one fails in the driver (OverflowError), not as 422.
BIGINT_MAX = 2**63 - 1

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
    session: AsyncSession,
    model: type[RowT],
    key: dict[str, Any],
    defaults: dict[str, Any],
    *,
    shared: bool = False,
) -> RowT:
    """The row whose primary key is ``key``, locked for update (or ``shared``: FOR SHARE, which waits for
    writers but not for other readers); inserted first with ``defaults`` if absent.

    Counters (inquiry numbers, list sequences) are created by whoever needs them first, and the first
    callers race: on PostgreSQL there is nothing to lock yet, and a plain INSERT would fail the loser with a
    unique violation — a 500. INSERT ... ON CONFLICT DO NOTHING lets one win; the others then wait on the
    winner's row lock. (On SQLite the writer lock already serialises them.)
    """
    # populate_existing: a row this session read before without the lock comes back as the database has
    # it now, not as the identity map kept it (a counter incremented on a stale copy loses updates).
    # A shared lock on a row that does not exist yet would lock nothing; creating it first gives the
    # reader something that writers then wait for (and it waits for a writer creating it meanwhile).
    lock: dict[str, bool] = {"read": shared}
    row = await session.get(model, key, with_for_update=lock, populate_existing=True)
    if row is None:
        insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(model).values(**key, **defaults).on_conflict_do_nothing())
        row = await session.get(model, key, with_for_update=lock, populate_existing=True)
        assert row is not None
    return row


async def lock_or_create_many(
    session: AsyncSession, model: type[Base], keys: Sequence[dict[str, Any]], defaults: dict[str, Any]
) -> list[Row[Any]]:
    """Several rows of one table by primary key, each inserted with ``defaults`` if absent, then all locked
    for update; returned as Core rows in primary-key order.

    The batch form of :func:`lock_or_create` for callers that lock many counters in one transaction (a
    day's lists, two per branch). Every missing row is inserted first (ON CONFLICT DO NOTHING: existing
    rows are neither changed nor locked by it) and only then are all of them locked with one ``SELECT ...
    ORDER BY primary key FOR UPDATE``, which PostgreSQL locks in that order. Two such callers therefore
    take their locks in the same order whatever their batches hold, and cannot deadlock; a single-row
    caller of ``lock_or_create`` is the batch of one. Two statements, whatever the number of rows.
    """
    if not keys:
        return []
    table: Table = model.__table__  # type: ignore[assignment]
    primary_key = list(table.primary_key.columns)
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    ordered = sorted(keys, key=lambda key: tuple(key[column.name] for column in primary_key))
    await session.execute(insert(table).on_conflict_do_nothing(), [{**key, **defaults} for key in ordered])
    wanted = [tuple(key[column.name] for column in primary_key) for key in ordered]
    result = await session.execute(
        select(table).where(tuple_(*primary_key).in_(wanted)).order_by(*primary_key).with_for_update()
    )
    return list(result.all())


async def insert_many(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` in the session's transaction; every row names the same columns.

    The rows go to the driver as tuples, past SQLAlchemy's per-row parameter handling (the columns' own
    bind processors, UTCDateTime's say, are applied here). On PostgreSQL through ``COPY ... FROM STDIN``
    (binary): an executemany makes the server bind and execute one INSERT per row and the driver encode
    each row's parameters in the event loop; for the 200,000 lines of a day's lists COPY took about 1.5 s
    of the server's CPU and most of the driver's work away. On SQLite one executemany of the driver's own
    (a fifth less CPU than a Core executemany of dicts). Constraint violations are raised as SQLAlchemy's
    ``IntegrityError`` on either path.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect
    names = [column.name for column in table.columns if column.name in rows[0]]  # the table's order
    processors = [(name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    if any(processor is not None for _, processor in processors):
        records = [
            tuple(row[name] if processor is None else processor(row[name]) for name, processor in processors)
            for row in rows
        ]
    elif len(names) > 1:
        # A fifth of the time of building each row's tuple in Python (itemgetter of several keys: a tuple).
        records = list(map(itemgetter(*names), rows))
    else:
        records = [(row[names[0]],) for row in rows]
    connection = await session.connection()
    if dialect.name != "postgresql":
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        assert compiled.positiontup == names  # positional parameters, in the order of the records
        await connection.exec_driver_sql(compiled.string, records)
        return
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # an asyncpg connection, inside this session's transaction
    try:
        await driver.copy_records_to_table(
            table.name, schema_name=table.schema, columns=names, records=records
        )
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(f"COPY {table.name}", None, error) from error


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


async def _acquire_within(lock: asyncio.Lock, seconds: float) -> None:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that arrives as the lock
    # is granted, so a background job cancelled at shutdown ran on into its next sleep and the lifespan's
    # shutdown waited for it for ever (a hang seen in the test suite's teardowns).
    async with asyncio.timeout(seconds):
        await lock.acquire()


class _WriterQueue:
    """One process's SQLite writers, in turn: taken before ``BEGIN IMMEDIATE``, freed once the transaction
    has ended (after COMMIT or ROLLBACK has returned, so the next writer never meets the busy handler).

    A task that already holds a write transaction and begins another one (on a second session) waits
    here as it would in SQLite's busy handler, and fails the same way after the busy timeout.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        # asyncio.Lock belongs to one event loop; tests and CLIs may run several loops in turn.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        # DBAPI connection (by id) -> the lock it holds while its write transaction is open.
        self._held: dict[int, asyncio.Lock] = {}

    def acquire(self, dbapi_connection: Any) -> None:
        """Called from SQLAlchemy's synchronous events, inside the greenlet of an async call."""
        if id(dbapi_connection) in self._held:
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        try:
            await_only(_acquire_within(lock, self._timeout_s))
        except TimeoutError:
            # As SQLite's busy handler would have failed it, so callers see the error they always saw.
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked (writer queue)")
            ) from None
        self._held[id(dbapi_connection)] = lock

    def release(self, dbapi_connection: Any) -> None:
        lock = self._held.pop(id(dbapi_connection), None)
        if lock is not None and lock.locked():
            lock.release()


def make_engine(
    url: str, *, sqlite_busy_timeout_ms: int = 30_000, sqlite_begin: str = "BEGIN IMMEDIATE", **kwargs: Any
) -> AsyncEngine:
    if url.startswith("sqlite"):
        # The pool's rollback on return is replaced by :func:`_rollback_if_open`: after a COMMIT or
        # ROLLBACK it was one more trip through aiosqlite's thread for nothing, on every transaction.
        engine = create_async_engine(
            url,
            connect_args={"timeout": sqlite_busy_timeout_ms / 1000},
            pool_reset_on_return=None,
            **kwargs,
        )
        _rollback_if_open(engine)
        writers = _WriterQueue(sqlite_busy_timeout_ms / 1000) if sqlite_begin == "BEGIN IMMEDIATE" else None

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
            if writers is None:
                conn.exec_driver_sql(sqlite_begin)
                return
            dbapi_connection = conn.connection.dbapi_connection
            writers.acquire(dbapi_connection)
            try:
                conn.exec_driver_sql(sqlite_begin)
            except BaseException:
                writers.release(dbapi_connection)
                raise

        if writers is not None:
            _release_writer_after_transaction(engine, writers)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _rollback_if_open(engine: AsyncEngine) -> None:
    """A connection returned to the pool inside a transaction is rolled back, as the pool's own reset
    would; one whose transaction already ended (the usual case) is returned as it is."""

    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        if state.terminate_only or not state.asyncio_safe:
            return  # being discarded, or not from a greenlet: the pool closes it instead
        # SQLAlchemy's adapter holds the aiosqlite connection, whose in_transaction is sqlite3's own.
        if dbapi_connection._connection.in_transaction:
            engine.sync_engine.dialect.do_rollback(dbapi_connection)


def _release_writer_after_transaction(engine: AsyncEngine, writers: _WriterQueue) -> None:
    """Free the writer queue when the transaction has really ended on the database.

    The dialect's commit and rollback are wrapped (the connection events fire *before* the COMMIT is sent);
    the pool's rollback on check-in goes through ``do_rollback`` too. Check-in, invalidation and close are
    a safety net for a connection that leaves without either.
    """
    dialect = engine.sync_engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    def _free(dbapi_connection: Any, *_args: Any) -> None:
        if dbapi_connection is not None:
            writers.release(dbapi_connection)

    for name in ("checkin", "invalidate", "soft_invalidate", "close", "close_detached", "detach"):
        event.listen(engine.sync_engine, name, _free)


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
