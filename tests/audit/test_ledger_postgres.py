"""PostgreSQL: nobody rewrites the ledger through ordinary rights, and many processes make one chain (LG-2).

The append-only triggers are checked against the application's own connection and against a separate
non-superuser role that holds every table right; the concurrency test runs writer processes
(tests/audit/ledger_writer.py) that append to one database at the same moment.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.audit.ledger import SYSTEM_ACTOR, CheckpointRule, record
from app.audit.models import AuditCheckpoint, AuditEvent
from app.audit.service import checkpoint_rule, verify_ledger
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring, new_key_document
from app.demo import seed_demo
from app.main import build_context
from tests.audit.ledger_support import all_checkpoints, all_events, chain_head
from tests.support.pgserver import PostgresServer, quote_ident

pytestmark = pytest.mark.pg

REPO = Path(__file__).resolve().parents[2]
LEDGER_TABLES = ("audit_events", "audit_checkpoints")
# The writer processes sign a checkpoint every this many events.
WRITERS_CHECKPOINT_EVERY = 250
WRITERS = 2
EVENTS_PER_WRITER = 5_000
_names = itertools.count()


@pytest.fixture
def pg_database(pg_server: PostgresServer, pg_template: str) -> Iterator[str]:
    name = f"ledger_{os.getpid()}_{next(_names)}"
    pg_server.create_database(name, template=pg_template)
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def key_document(clock: ManualClock) -> dict[str, Any]:
    return new_key_document(clock.now())


@pytest.fixture
async def pg_ctx(
    pg_server: PostgresServer,
    pg_database: str,
    tmp_path: Path,
    clock: ManualClock,
    key_document: dict[str, Any],
) -> AsyncIterator[AppContext]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_server.dsn(pg_database),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        checkpoint_every_events=3,
    )
    ctx = build_context(settings, clock=clock, keyring=Keyring(key_document))
    yield ctx
    await ctx.db.dispose()


async def _append(ctx: AppContext, count: int) -> None:
    for n in range(count):
        async with ctx.db.session() as session:
            record(session, actor=SYSTEM_ACTOR, action="test.appended", details={"n": n})
            await session.commit()


def _refusals(table: str) -> list[str]:
    # Row triggers fire only on rows the statement touches: aim at a row that exists.
    first = f"(SELECT min(seq) FROM {table})"
    return [
        f"UPDATE {table} SET hash = '{'0' * 64}' WHERE seq = {first}",
        f"DELETE FROM {table} WHERE seq = {first}",
        f"TRUNCATE {table}",
    ]


async def _snapshot(ctx: AppContext) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with ctx.db.engine.connect() as conn:
        events = (await conn.execute(text("SELECT * FROM audit_events ORDER BY seq"))).all()
        checkpoints = (await conn.execute(text("SELECT * FROM audit_checkpoints ORDER BY seq"))).all()
    return [tuple(r) for r in events], [tuple(r) for r in checkpoints]


async def test_the_applications_own_connection_cannot_update_delete_or_truncate_the_ledger(
    pg_ctx: AppContext,
) -> None:
    await _append(pg_ctx, 7)
    before = await _snapshot(pg_ctx)
    assert len(before[0]) == 7
    assert len(before[1]) >= 2

    for table in LEDGER_TABLES:
        for statement in _refusals(table):
            with pytest.raises(DBAPIError) as refused:
                async with pg_ctx.db.engine.begin() as conn:
                    await conn.execute(text(statement))
            assert "the audit ledger is append-only" in str(refused.value), statement
            assert getattr(refused.value.orig, "sqlstate", None) == "42501", statement
    assert await _snapshot(pg_ctx) == before
    assert (await verify_ledger(pg_ctx.db, pg_ctx.keyring, checkpoint_rule(pg_ctx.settings))).ok


@pytest.fixture
def clerk(pg_server: PostgresServer, pg_database: str) -> Iterator[str]:
    """A login role that is not a superuser but holds every right on every table of the database."""
    role = f"clerk_{os.getpid()}_{next(_names)}"
    pg_server.create_role(role)
    rights = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
    pg_server.psql(
        f"GRANT {rights} ON ALL TABLES IN SCHEMA public TO {quote_ident(role)}", database=pg_database
    )
    yield role
    pg_server.psql(f"DROP OWNED BY {quote_ident(role)}", database=pg_database)
    pg_server.psql(f"DROP ROLE {quote_ident(role)}")


async def test_even_a_role_with_every_table_right_cannot_rewrite_the_ledger_or_switch_the_guard_off(
    pg_ctx: AppContext, pg_server: PostgresServer, pg_database: str, clerk: str
) -> None:
    await seed_demo(pg_ctx)
    before = await _snapshot(pg_ctx)
    conn = await asyncpg.connect(pg_server.dsn(pg_database, user=clerk, driver=""))
    try:
        for table in LEDGER_TABLES:
            for statement in _refusals(table):
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute(statement)
        # Not by switching triggers off for the session, nor for the table, nor by dropping them.
        for statement in (
            "SET session_replication_role = replica",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_events_no_update_delete ON audit_events",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        # The same role can change ordinary tables: it is the ledger that refuses.
        assert await conn.execute("UPDATE users SET phone = '03-5550-9999' WHERE id = 'op001'") == "UPDATE 1"
        assert await conn.fetchval("SELECT phone FROM users WHERE id = 'op001'") == "03-5550-9999"
    finally:
        await conn.close()
    assert await _snapshot(pg_ctx) == before
    assert (await verify_ledger(pg_ctx.db, pg_ctx.keyring, checkpoint_rule(pg_ctx.settings))).ok


def _start_writers(tmp_path: Path, database_url: str, keys: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOKAI_", "PG"))}
    processes = []
    for writer in range(WRITERS):
        job = {
            "database_url": database_url,
            "keys": keys,
            "writer": writer,
            "events": EVENTS_PER_WRITER,
            "tasks": 4,
            "checkpoint_every_events": WRITERS_CHECKPOINT_EVERY,
            "ready_file": str(tmp_path / f"ready-{writer}"),
            "start_file": str(tmp_path / "start"),
        }
        job_file = tmp_path / f"job-{writer}.json"
        job_file.write_text(json.dumps(job), encoding="utf-8")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.audit.ledger_writer", str(job_file)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    return processes


async def test_two_processes_appending_at_once_make_one_gapless_verifiable_chain(
    pg_ctx: AppContext,
    pg_server: PostgresServer,
    pg_database: str,
    tmp_path: Path,
    key_document: dict[str, Any],
) -> None:
    await _append(pg_ctx, 3)
    base = (await chain_head(pg_ctx)).seq
    # Every process signs checkpoints with the same key material, as the workers of one instance do.
    processes = _start_writers(tmp_path, pg_server.dsn(pg_database), key_document)
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{w}").exists() for w in range(WRITERS)):
            failed = [p for p in processes if p.poll() is not None]
            assert not failed, failed[0].communicate()[1].decode()
            assert time.monotonic() < deadline, "writers did not get ready"
            await asyncio.sleep(0.01)
        (tmp_path / "start").touch()
        results = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(processes, results, strict=True):
        assert p.returncode == 0, err.decode()
        assert out == b""

    events = await all_events(pg_ctx)
    new = events[base:]
    assert len(new) == WRITERS * EVENTS_PER_WRITER
    assert [e.seq for e in events] == list(range(1, base + WRITERS * EVENTS_PER_WRITER + 1))
    assert (await chain_head(pg_ctx)).seq == len(events)
    # Each session's events appear in the chain in the order it committed them, none lost or doubled.
    by_session: dict[str, list[int]] = defaultdict(list)
    for event in new:
        assert event.action == "test.concurrent_append"
        by_session[str(event.object_id)].append(json.loads(event.details)["n"])
    assert len(by_session) == WRITERS * 4
    assert all(ns == list(range(len(ns))) for ns in by_session.values())
    assert sum(len(ns) for ns in by_session.values()) == WRITERS * EVENTS_PER_WRITER
    # The writers really ran at the same time: their events interleave in the chain.
    owners = [e.actor_id for e in new]
    switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert switches > 100

    # Judged by the rule the writers appended under.
    rule = CheckpointRule(WRITERS_CHECKPOINT_EVERY, pg_ctx.settings.checkpoint_every_seconds)
    report = await verify_ledger(pg_ctx.db, pg_ctx.keyring, rule)
    checkpoints = await all_checkpoints(pg_ctx)
    assert report.ok, report.as_dict()
    assert report.checked == len(events)
    assert report.checkpoints_checked == len(checkpoints)
    written_by_writers = [c for c in checkpoints if c.seq > base]
    assert len(written_by_writers) >= (WRITERS * EVENTS_PER_WRITER) // 250 - 1
    async with pg_ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == len(events)
        assert await session.scalar(select(func.max(AuditCheckpoint.seq))) == checkpoints[-1].seq
