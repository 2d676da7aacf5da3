"""Reading the ledger: verification, the event stream and checkpoints (LG-2).

These functions read through the driver connection in large batches and a single snapshot, because
verify must walk a million events quickly in constant memory; the ORM would cost a Python object
per row and hold them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.ledger import (
    EVENT_COLUMNS,
    ChainVerifier,
    CheckpointRule,
    VerifyReport,
    ndjson_line,
    verify_checkpoint_signature,
)
from app.audit.models import AuditCheckpoint, AuditEvent
from app.clock import from_rfc3339, rfc3339
from app.config import Settings
from app.crypto.keyring import Keyring, public_key_pem
from app.db import Database

# Pages of 2,000 rows keep each page's row tuples in CPU cache and out of the cyclic GC's older
# generations: faster than 20,000 (bench/bench_verify.py) and peak memory ~64 MB instead of ~109 MB.
VERIFY_BATCH = 2_000
# Built from a constant column list, never from input.
_EVENTS_AFTER = f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"  # noqa: S608


class _RawReader:
    """Snapshot reads over the driver connection for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self._conn = conn
        self._dialect = dialect
        self._driver: Any = None

    async def __aenter__(self) -> _RawReader:
        raw = await self._conn.get_raw_connection()
        self._driver = raw.driver_connection
        if self._dialect == "sqlite":
            await self._driver.execute("BEGIN")  # deferred: a read snapshot that does not block writers
        else:
            await self._driver.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._driver.execute("ROLLBACK")

    async def fetch(self, sql: str, *params: Any) -> list[Sequence[Any]]:
        if self._dialect == "sqlite":
            sql = _to_qmark(sql)
            async with self._driver.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        return list(await self._driver.fetch(sql, *params))


def _to_qmark(sql: str) -> str:
    for index in range(9, 0, -1):
        sql = sql.replace(f"${index}", "?")
    return sql


def checkpoint_rule(settings: Settings) -> CheckpointRule:
    """The rule this deployment appends under (the same settings build the ledger's context)."""
    return CheckpointRule(settings.checkpoint_every_events, settings.checkpoint_every_seconds)


async def verify_ledger(
    db: Database, keyring: Keyring, rule: CheckpointRule, *, batch: int = VERIFY_BATCH
) -> VerifyReport:
    """Walk the whole chain and its checkpoints; name the first bad seq. ``rule`` is the checkpoint rule
    the gateway appends under (a chain it wrote leaves nothing unsigned that the rule would sign)."""
    public_keys = keyring.checkpoint_public_keys()
    retired = keyring.checkpoint_keys_retired()
    async with db.engine.connect() as conn, _RawReader(conn, db.dialect) as reader:
        head_rows = await reader.fetch(
            "SELECT seq, hash, last_checkpoint_seq, last_checkpoint_at FROM audit_chain_head WHERE id = 1"
        )
        head_seq, head_hash = int(head_rows[0][0]), str(head_rows[0][1])
        checkpoint_rows = await reader.fetch(
            "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq"
        )
        checkpoints: dict[int, str] = {}
        latest: dict[str, Any] | None = None
        bad_checkpoint: tuple[int, str] | None = None
        for seq, hash_hex, at, key_id, signature in checkpoint_rows:
            entry = {"seq": int(seq), "hash": hash_hex, "at": at, "key_id": key_id, "signature": signature}
            problem = _checkpoint_problem(entry, latest, public_keys, retired, grace=keyring.rotation_lag)
            if problem is not None and bad_checkpoint is None:
                bad_checkpoint = (int(seq), problem)
            checkpoints[int(seq)] = hash_hex
            latest = entry
        head_problem = _head_checkpoint_problem(head_rows[0][2], head_rows[0][3], latest)
        if head_problem is not None and (bad_checkpoint is None or head_problem[0] < bad_checkpoint[0]):
            bad_checkpoint = head_problem
        verifier = ChainVerifier(checkpoints=checkpoints)
        after = 0
        while True:
            rows = await reader.fetch(_EVENTS_AFTER, after, batch)
            if not rows:
                break
            if not verifier.feed(rows):
                break
            after = int(rows[-1][0])
        verifier.finish(head_seq=head_seq, head_hash=head_hash)
        if verifier.first_bad_seq is None:
            unsigned = await _unsigned_tail_problem(rule, reader, checked=verifier.checked, latest=latest)
            if unsigned is not None and (bad_checkpoint is None or unsigned[0] < bad_checkpoint[0]):
                bad_checkpoint = unsigned
    report = VerifyReport(
        ok=verifier.first_bad_seq is None and bad_checkpoint is None,
        checked=verifier.checked,
        head_seq=head_seq,
        head_hash=head_hash,
        first_bad_seq=verifier.first_bad_seq,
        reason=verifier.reason,
        checkpoints_checked=verifier.checkpoints_matched,
        latest_checkpoint=latest,
    )
    if bad_checkpoint is not None and (
        report.first_bad_seq is None or bad_checkpoint[0] < report.first_bad_seq
    ):
        report.first_bad_seq, report.reason = bad_checkpoint
    return report


# Clocks of the gateway's processes may differ by this much; a checkpoint is judged against its key's
# retirement, and against the checkpoint before it, with this allowance.
CLOCK_SKEW = timedelta(seconds=60)


def public_keys_document(keyring: Keyring) -> dict[str, dict[str, str | None]]:
    """What ``shokai keys public`` gives auditors: each checkpoint key's PEM and, for a retired one, the
    last time it could have signed (its retirement, the key file's check interval and the clock skew),
    so the offline check refuses what it signed after, as this one does."""
    retired = keyring.checkpoint_keys_retired()
    return {
        kid: {
            "public_key": public_key_pem(key),
            "signs_until": rfc3339(retired[kid] + keyring.rotation_lag + CLOCK_SKEW)
            if kid in retired
            else None,
        }
        for kid, key in keyring.checkpoint_public_keys().items()
    }


def _checkpoint_problem(
    checkpoint: dict[str, Any],
    previous: dict[str, Any] | None,
    public_keys: dict[str, Ed25519PublicKey],
    retired: dict[str, datetime],
    *,
    grace: timedelta,
) -> str | None:
    """Why a stored checkpoint is not one the gateway signed in its place, or None.

    A good signature is not enough: the key must still have been in use at the checkpoint's time (one
    retired after a leak would sign anything), and checkpoints are signed in order, so their times do
    not go back."""
    if not verify_checkpoint_signature(checkpoint, public_keys):
        return "checkpoint_signature_invalid"
    at = from_rfc3339(str(checkpoint["at"]))
    retired_at = retired.get(str(checkpoint["key_id"]))
    if retired_at is not None and at > retired_at + grace + CLOCK_SKEW:
        return "checkpoint_key_retired"
    if previous is not None:
        before = from_rfc3339(str(previous["at"]))
        if at < before - CLOCK_SKEW:
            return "checkpoint_out_of_order"
    return None


async def _unsigned_tail_problem(
    rule: CheckpointRule, reader: _RawReader, *, checked: int, latest: dict[str, Any] | None
) -> tuple[int, str] | None:
    """Events the gateway would have signed that no checkpoint covers: checkpoints removed, the head row
    set back to an older one and the chain after it rewritten, which every other check takes for a chain
    that simply has not been signed again yet.

    The gateway signs in the very append that makes a checkpoint due (ledger._checkpoint_due): its first
    event, an append that leaves ``rule.every_events`` events unsigned, and one made
    ``rule.every_seconds`` after the last checkpoint. So a chain it wrote has fewer unsigned events
    than that at its end, none recorded that long after the last checkpoint, and none at all unsigned
    before a checkpoint exists. (Judged with the settings in force now: lowering the event count makes an
    older tail look unsigned until the next append signs it.)"""
    if checked == 0:
        return None
    if latest is None:
        return 1, "checkpoint_missing"
    signed_seq = int(latest["seq"])
    if checked - signed_seq >= rule.every_events:
        return signed_seq + rule.every_events, "checkpoint_missing"
    due_at = from_rfc3339(str(latest["at"])) + timedelta(seconds=rule.every_seconds)
    for seq, at in await reader.fetch(_UNSIGNED_TAIL, signed_seq):
        if from_rfc3339(str(at)) > due_at + CLOCK_SKEW:
            return int(seq), "checkpoint_missing"
    return None


_UNSIGNED_TAIL = "SELECT seq, at FROM audit_events WHERE seq > $1 ORDER BY seq"


def _head_checkpoint_problem(
    head_checkpoint_seq: Any, head_checkpoint_at: Any, latest: dict[str, Any] | None
) -> tuple[int, str] | None:
    """The head row names the last checkpoint signed; if the latest stored one is another, checkpoints
    were removed (or one added) behind the ledger's back."""
    if not head_checkpoint_seq:
        return None
    if latest is None or (int(latest["seq"]), latest["at"]) != (int(head_checkpoint_seq), head_checkpoint_at):
        return int(head_checkpoint_seq), "checkpoint_missing"
    return None


@dataclass(frozen=True)
class EventFilter:
    after_seq: int = 0
    since: datetime | None = None
    until: datetime | None = None
    actor_id: str | None = None
    action: str | None = None
    object_id: str | None = None
    limit: int | None = None

    def as_details(self) -> dict[str, Any]:
        return {
            "after_seq": self.after_seq,
            "since": rfc3339(self.since) if self.since else None,
            "until": rfc3339(self.until) if self.until else None,
            "actor_id": self.actor_id,
            "action": self.action,
            "object_id": self.object_id,
            "limit": self.limit,
        }


def event_json_line(event: AuditEvent) -> bytes:
    return ndjson_line(
        (
            event.seq,
            event.at,
            event.actor_id,
            event.actor_roles,
            event.terminal_id,
            event.address,
            event.action,
            event.object_type,
            event.object_id,
            event.outcome,
            event.details,
            event.request_id,
            event.prev_hash,
            event.hash,
        )
    )


async def stream_events(db: Database, where: EventFilter, *, page: int = 1000) -> AsyncIterator[bytes]:
    """NDJSON lines in seq order; one short read per page, so memory stays flat and no lock is held."""
    after = where.after_seq
    remaining = where.limit
    while remaining is None or remaining > 0:
        size = page if remaining is None else min(page, remaining)
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(size)
        if where.since is not None:
            query = query.where(AuditEvent.at >= rfc3339(where.since))
        if where.until is not None:
            query = query.where(AuditEvent.at < rfc3339(where.until))
        if where.actor_id is not None:
            query = query.where(AuditEvent.actor_id == where.actor_id)
        if where.action is not None:
            query = query.where(AuditEvent.action == where.action)
        if where.object_id is not None:
            query = query.where(AuditEvent.object_id == where.object_id)
        async with db.read_session() as session:
            events = list((await session.scalars(query)).all())
        if not events:
            return
        for item in events:
            yield event_json_line(item)
        after = events[-1].seq
        if remaining is not None:
            remaining -= len(events)
        if len(events) < size:
            return


async def list_checkpoints(session: AsyncSession, *, after_seq: int, limit: int) -> list[AuditCheckpoint]:
    query = select(AuditCheckpoint).where(AuditCheckpoint.seq > after_seq).order_by(AuditCheckpoint.seq)
    return list((await session.scalars(query.limit(limit))).all())


async def checkpoint_page(
    session: AsyncSession, *, after_seq: int, limit: int
) -> tuple[list[AuditCheckpoint], str | None]:
    """One page of checkpoints and the cursor of the next, None when this page is the last.

    One more row than the page is read to know: a full last page used to carry a cursor to an empty one."""
    rows = await list_checkpoints(session, after_seq=after_seq, limit=limit + 1)
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], str(rows[limit - 1].seq)
