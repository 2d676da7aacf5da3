"""SQLite writers of one process queue in-process before BEGIN IMMEDIATE (app/db.py).

What an operator would notice: many requests writing at once all succeed and none waits for SQLite's
sleeping busy handler; a task that wrongly opens a second write transaction while holding one fails
after the busy timeout, as it did before, instead of hanging.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db import Database, _acquire_within


async def _database(tmp_path: Path, *, busy_timeout_ms: int = 30_000) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}", sqlite_busy_timeout_ms=busy_timeout_ms)
    async with db.session() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL)"))
        await session.commit()
    return db


async def test_concurrent_writers_all_commit_in_turn(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    inside = 0
    most_inside = 0

    async def writer(n: int) -> None:
        nonlocal inside, most_inside
        async with db.session() as session:
            await session.execute(text("INSERT INTO t (writer) VALUES (:n)"), {"n": n})
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.005)  # hold the transaction open across an await
            inside -= 1
            if n % 5 == 0:
                await session.rollback()
            else:
                await session.commit()

    started = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(40)))
    elapsed = time.perf_counter() - started
    async with db.read_session() as session:
        count = await session.scalar(text("SELECT count(*) FROM t"))
    await db.dispose()
    assert count == 32  # every writer but the 8 that rolled back
    assert most_inside == 1  # one write transaction at a time
    # 40 turns of ~5 ms: with SQLite's busy handler alone the waiters slept in 100 ms steps.
    assert elapsed < 20


async def test_a_second_write_transaction_in_the_same_task_fails_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path, busy_timeout_ms=1000)
    async with db.session() as outer:
        await outer.execute(text("INSERT INTO t (writer) VALUES (1)"))
        started = time.perf_counter()
        with pytest.raises(OperationalError) as raised:
            async with db.session() as inner:
                await inner.execute(text("INSERT INTO t (writer) VALUES (2)"))
        assert isinstance(raised.value.orig, sqlite3.OperationalError)
        assert "locked" in str(raised.value.orig)
        assert 0.9 < time.perf_counter() - started < 10
        await outer.commit()
    # The queue is free again afterwards.
    async with db.session() as session:
        await session.execute(text("INSERT INTO t (writer) VALUES (3)"))
        await session.commit()
    async with db.read_session() as session:
        writers = list(await session.scalars(text("SELECT writer FROM t ORDER BY writer")))
    await db.dispose()
    assert writers == [1, 3]


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(tmp_path: Path) -> None:
    """The pool no longer rolls back every connection it takes back (app/db.py::_rollback_if_open): one
    that comes back with a transaction open must still lose it, or the next user would write into it and
    the file would stay locked for other processes."""
    db = await _database(tmp_path)
    async with db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        await raw.execute("BEGIN IMMEDIATE")
        await raw.execute("INSERT INTO t (writer) VALUES (1)")
    # Another process can write at once: the returned connection's lock is gone.
    other = sqlite3.connect(tmp_path / "queue.db", timeout=0)
    other.execute("INSERT INTO t (writer) VALUES (2)")
    other.commit()
    other.close()
    async with db.session() as session:
        await session.execute(text("INSERT INTO t (writer) VALUES (3)"))
        await session.commit()
    async with db.read_session() as session:
        writers = (await session.scalars(text("SELECT writer FROM t ORDER BY writer"))).all()
    await db.dispose()
    assert writers == [2, 3]  # the uncommitted row of the returned connection is gone


async def test_a_shutdown_that_cancels_a_writer_as_it_is_let_in_is_not_lost() -> None:
    """A background job cancelled at shutdown in the same turn as the writer lock is granted to it must
    stop, and leave the lock free. With ``asyncio.wait_for`` (Python 3.11) the cancellation was lost: the
    job ran on into its next sleep and the lifespan's shutdown waited for it for ever."""
    lock = asyncio.Lock()
    await lock.acquire()
    writer = asyncio.create_task(_acquire_within(lock, 30))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the writer is queued on the lock

    lock.release()  # its turn comes...
    writer.cancel()  # ...as the shutdown cancels it

    with pytest.raises(asyncio.CancelledError):
        await writer
    assert not lock.locked()
