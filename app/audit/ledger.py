"""The tamper-evident ledger (LG-1, LG-2).

Appending: :func:`record` only queues an event on the session. Just before that session commits,
the ``before_commit`` hook installed by :func:`install_ledger_hooks` locks the chain head, gives the
queued events the next gapless ``seq`` numbers, chains their hashes and inserts them — in the same
transaction as the action. If that insert fails the commit fails and the action rolls back with it
(fail closed). Taking the head lock at the last moment keeps the serialised part of a transaction short,
which is what lets many worker processes on one PostgreSQL append to one chain quickly.

``hash = SHA-256(prev_hash_bytes || canonical_json(event))``; canonical JSON is orjson with sorted keys,
``actor_roles`` and ``details`` embedded as the exact canonical text stored in their columns.
Checkpoints sign ``f"{seq}|{hash}|{at}"`` with Ed25519 every N events or T seconds.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, bindparam, event, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.audit.models import GENESIS_HASH, AuditChainHead, AuditCheckpoint, AuditEvent
from app.clock import Clock, from_rfc3339, rfc3339
from app.crypto.keyring import Keyring
from app.errors import LedgerUnavailable

PENDING_KEY = "shokai.pending_audit"
CONTEXT_KEY = "shokai.ledger"
# The head this transaction wrote, handed to the context's ChainHeadCache once the commit has succeeded.
WRITTEN_HEAD_KEY = "shokai.written_head"

# Details are free-form but must never carry personal data or secrets (requirements LG-2, AU-7).
FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "secret",
        "client_secret",
        "key",
        "terminal_key",
        "token",
        "name",
        "name_kana",
        "name_kanji",
        "birth_date",
        "phone",
        "address",
        "postal_code",
        "subject",
        "record",
    }
)


@dataclass(frozen=True)
class Actor:
    """Who did something, as the ledger names them."""

    id: str | None
    roles: tuple[str, ...] = ()
    terminal_id: str | None = None
    address: str | None = None
    request_id: str | None = None


SYSTEM_ACTOR = Actor(id="system", roles=("system",))


@dataclass(frozen=True)
class _HeadState:
    seq: int
    hash: str
    last_checkpoint_seq: int
    last_checkpoint_at: str | None


class ChainHeadCache:
    """The chain head as this process last committed it, so an append can skip reading the head.

    Only a guess: the append writes the new head with a compare-and-set on all four columns
    (``UPDATE … WHERE seq = :seq AND hash = :hash …``), which succeeds only when the row is exactly what
    the events were chained from. Another process's append, a checkpoint, a rollback after the guess was
    taken or a tampered head all make it miss, and the append then locks and reads the head as before.
    """

    def __init__(self) -> None:
        self._known: _HeadState | None = None

    @property
    def known(self) -> _HeadState | None:
        return self._known

    def committed(self, head: _HeadState) -> None:
        # Commits of one process can finish out of order; never step back to an older head.
        if self._known is None or head.seq >= self._known.seq:
            self._known = head


@dataclass(frozen=True)
class CheckpointRule:
    """When the gateway signs the head (LG-2): after this many events, or this long after the last
    checkpoint — appending and verifying read the same rule."""

    every_events: int
    every_seconds: int


@dataclass(frozen=True)
class LedgerContext:
    keyring: Keyring
    clock: Clock
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: int = 300
    head: ChainHeadCache = field(default_factory=ChainHeadCache, compare=False, repr=False)

    @property
    def checkpoint_rule(self) -> CheckpointRule:
        return CheckpointRule(self.checkpoint_every_events, self.checkpoint_every_seconds)


@dataclass
class _PendingEvent:
    at: str
    actor: Actor
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    details: str


def canonical_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _check_details(details: Mapping[str, Any]) -> None:
    for key, value in details.items():
        if key.lower() in FORBIDDEN_DETAIL_KEYS:
            raise ValueError(f"audit details may not carry {key!r}")
        if isinstance(value, Mapping):
            _check_details(value)


def record(
    session: AsyncSession | Session,
    *,
    actor: Actor,
    action: str,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Queue an audit event; it is chained and written when (and only if) this transaction commits.

    ``at`` is for an event that must carry the very instant the action read for its own record (so the
    two cannot fall on either side of a midnight); by default the clock is read now.
    """
    context: LedgerContext = session.info[CONTEXT_KEY]
    payload = dict(details or {})
    _check_details(payload)
    session.info.setdefault(PENDING_KEY, []).append(
        _PendingEvent(
            at=rfc3339(at if at is not None else context.clock.now()),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            details=canonical_json(payload),
        )
    )


def canonical_event_bytes(
    seq: int,
    at: str,
    actor_id: str | None,
    actor_roles: str,
    terminal_id: str | None,
    address: str | None,
    action: str,
    object_type: str | None,
    object_id: str | None,
    outcome: str,
    details: str,
    request_id: str | None,
) -> bytes:
    return orjson.dumps(
        {
            "seq": seq,
            "at": at,
            "actor_id": actor_id,
            "actor_roles": orjson.Fragment(actor_roles),
            "terminal_id": terminal_id,
            "address": address,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "outcome": outcome,
            "details": orjson.Fragment(details),
            "request_id": request_id,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def chain_digest(prev_digest: bytes, canonical: bytes) -> bytes:
    return hashlib.sha256(prev_digest + canonical).digest()


def checkpoint_message(seq: int, hash_hex: str, at: str) -> bytes:
    return f"{seq}|{hash_hex}|{at}".encode()


def _sign_checkpoint(context: LedgerContext, seq: int, hash_hex: str, at: str) -> dict[str, Any]:
    key = context.keyring.checkpoint_signing_key()
    signature = key.private_key.sign(checkpoint_message(seq, hash_hex, at))
    return {
        "seq": seq,
        "hash": hash_hex,
        "at": at,
        "key_id": key.key_id,
        "signature": base64.b64encode(signature).decode(),
    }


_HEAD: Table = AuditChainHead.__table__  # type: ignore[assignment]
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[assignment]


# The statements of an append, built once: they run in every transaction that records an event, some of
# them while every other appender waits, and building a statement (and its cache key) cost more than
# running it.
_LOCK_HEAD = (
    select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.last_checkpoint_seq, _HEAD.c.last_checkpoint_at)
    .where(_HEAD.c.id == 1)
    .with_for_update()
)
_HEAD_AFTER: dict[str, Any] = {
    "seq": bindparam("new_seq"),
    "hash": bindparam("new_hash"),
    "last_checkpoint_seq": bindparam("new_last_checkpoint_seq"),
    "last_checkpoint_at": bindparam("new_last_checkpoint_at"),
}
_SET_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(**_HEAD_AFTER)
_INSERT_EVENTS = _EVENTS.insert()
_INSERT_CHECKPOINTS = _CHECKPOINTS.insert()


def _lock_head(session: Session) -> _HeadState:
    """The chain head row, locked until commit (PostgreSQL row lock; SQLite already holds its writer lock).

    Core statements, not the ORM: this runs while every other appender waits, so it must be cheap.
    """
    row = session.connection().execute(_LOCK_HEAD).one()
    return _HeadState(row.seq, row.hash, row.last_checkpoint_seq, row.last_checkpoint_at)


def _checkpoint_due(context: LedgerContext, head: _HeadState, now: datetime) -> bool:
    # audit.service._unsigned_tail_problem checks a stored chain against this rule: keep them together.
    rule = context.checkpoint_rule
    if head.seq <= head.last_checkpoint_seq:
        return False
    if head.seq - head.last_checkpoint_seq >= rule.every_events:
        return True
    if head.last_checkpoint_at is None:
        return True
    last = from_rfc3339(head.last_checkpoint_at)
    return now - last >= timedelta(seconds=rule.every_seconds)


def _append_pending(session: Session) -> None:
    pending: list[_PendingEvent] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    try:
        # Write the action's own rows before taking the head lock, so the lock is held only for the chain.
        session.flush()
    except IntegrityError:
        # The action's own conflict, which its caller may answer: a concurrent request that took the same
        # Idempotency-Key first is a replay, not a ledger outage.
        raise
    except SQLAlchemyError as exc:
        raise LedgerUnavailable() from exc
    try:
        _chain_and_insert(session, pending)
    except SQLAlchemyError as exc:
        # Fail closed (LG-1): the commit is abandoned, so the action this event records never happens.
        raise LedgerUnavailable() from exc


@dataclass(frozen=True)
class _Chained:
    rows: list[dict[str, Any]]
    head: _HeadState
    checkpoint: dict[str, Any] | None


def _chain(context: LedgerContext, head: _HeadState, pending: list[_PendingEvent]) -> _Chained:
    """The events' rows chained onto ``head``, the head after them and the checkpoint if one is due."""
    seq = head.seq
    prev = bytes.fromhex(head.hash)
    rows: list[dict[str, Any]] = []
    for item in pending:
        seq += 1
        roles = canonical_json(list(item.actor.roles))
        canonical = canonical_event_bytes(
            seq,
            item.at,
            item.actor.id,
            roles,
            item.actor.terminal_id,
            item.actor.address,
            item.action,
            item.object_type,
            item.object_id,
            item.outcome,
            item.details,
            item.actor.request_id,
        )
        digest = chain_digest(prev, canonical)
        rows.append(
            {
                "seq": seq,
                "at": item.at,
                "actor_id": item.actor.id,
                "actor_roles": roles,
                "terminal_id": item.actor.terminal_id,
                "address": item.actor.address,
                "action": item.action,
                "object_type": item.object_type,
                "object_id": item.object_id,
                "outcome": item.outcome,
                "details": item.details,
                "request_id": item.actor.request_id,
                "prev_hash": prev.hex(),
                "hash": digest.hex(),
            }
        )
        prev = digest
    new_head = _HeadState(seq, prev.hex(), head.last_checkpoint_seq, head.last_checkpoint_at)
    now = context.clock.now()
    if not _checkpoint_due(context, new_head, now):
        return _Chained(rows, new_head, None)
    checkpoint = _sign_checkpoint(context, seq, new_head.hash, rfc3339(now))
    return _Chained(rows, _HeadState(seq, new_head.hash, seq, checkpoint["at"]), checkpoint)


def _head_after(head: _HeadState) -> dict[str, Any]:
    """The parameters of ``_HEAD_AFTER`` for ``head``."""
    return {
        "new_seq": head.seq,
        "new_hash": head.hash,
        "new_last_checkpoint_seq": head.last_checkpoint_seq,
        "new_last_checkpoint_at": head.last_checkpoint_at,
    }


@cache
def _swap_head_statement(*, checkpointed: bool) -> Any:
    """The head's compare-and-set (SQLite's cached head), built once as the statements above."""
    return (
        update(_HEAD)
        .where(
            _HEAD.c.id == 1,
            _HEAD.c.seq == bindparam("known_seq"),
            _HEAD.c.hash == bindparam("known_hash"),
            _HEAD.c.last_checkpoint_seq == bindparam("known_checkpoint_seq"),
            _HEAD.c.last_checkpoint_at == bindparam("known_checkpoint_at")
            if checkpointed
            else _HEAD.c.last_checkpoint_at.is_(None),
        )
        .values(**_HEAD_AFTER)
    )


def _chain_and_insert(session: Session, pending: list[_PendingEvent]) -> None:
    context: LedgerContext = session.info[CONTEXT_KEY]
    connection = session.connection()
    chained: _Chained | None = None
    # SQLite only: there the writer lock already serialises appenders and a miss costs one statement.
    # On PostgreSQL several processes append in turn, so the cached head mostly misses, and a miss first
    # waits for the other appender's row lock: 468 events/s with it against 724 without (bench_append_pg,
    # 2 processes, 2026-12-01).
    known = context.head.known if connection.dialect.name == "sqlite" else None
    if known is not None:
        # Chain onto the head this process last committed and write the new head only if the row is
        # still exactly that one: the UPDATE is the head lock (PostgreSQL row lock) and the check in
        # one statement, which saves the locking SELECT whenever this process appended last.
        chained = _chain(context, known, pending)
        swapped = connection.execute(
            _swap_head_statement(checkpointed=known.last_checkpoint_at is not None),
            {
                "known_seq": known.seq,
                "known_hash": known.hash,
                "known_checkpoint_seq": known.last_checkpoint_seq,
                "known_checkpoint_at": known.last_checkpoint_at,
                **_head_after(chained.head),
            },
        )
        if swapped.rowcount != 1:
            chained = None
    if chained is None:
        # Someone else appended (or checkpointed) since: lock and read the head, as without the cache.
        chained = _chain(context, _lock_head(session), pending)
        connection.execute(_SET_HEAD, _head_after(chained.head))
    connection.execute(_INSERT_EVENTS, chained.rows)
    if chained.checkpoint is not None:
        connection.execute(_INSERT_CHECKPOINTS, [chained.checkpoint])
    session.info[WRITTEN_HEAD_KEY] = chained.head


def _head_committed(session: Session) -> None:
    head: _HeadState | None = session.info.pop(WRITTEN_HEAD_KEY, None)
    if head is not None:
        context: LedgerContext = session.info[CONTEXT_KEY]
        context.head.committed(head)


def _discard_pending(session: Session, *_args: Any) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop(WRITTEN_HEAD_KEY, None)


def install_ledger_hooks(session_class: type[Session]) -> None:
    """Chain queued events just before commit; forget them on rollback."""
    event.listen(session_class, "before_commit", _append_pending)
    event.listen(session_class, "after_commit", _head_committed)
    event.listen(session_class, "after_rollback", _discard_pending)


async def checkpoint_now(session: AsyncSession) -> dict[str, Any] | None:
    """Sign the current head if events were appended since the last checkpoint (the T-seconds rule)."""

    def _do(sync_session: Session) -> dict[str, Any] | None:
        context: LedgerContext = sync_session.info[CONTEXT_KEY]
        head = _lock_head(sync_session)
        if head.seq <= head.last_checkpoint_seq:
            return None
        checkpoint = _sign_checkpoint(context, head.seq, head.hash, rfc3339(context.clock.now()))
        connection = sync_session.connection()
        connection.execute(_INSERT_CHECKPOINTS, [checkpoint])
        connection.execute(
            update(_HEAD)
            .where(_HEAD.c.id == 1)
            .values(last_checkpoint_seq=head.seq, last_checkpoint_at=checkpoint["at"])
        )
        sync_session.info[WRITTEN_HEAD_KEY] = _HeadState(head.seq, head.hash, head.seq, checkpoint["at"])
        return checkpoint

    result = await session.run_sync(_do)
    await session.commit()
    return result


# -- verification -----------------------------------------------------------------------------------

EVENT_COLUMNS = (
    "seq, at, actor_id, actor_roles, terminal_id, address, action, object_type, object_id, "
    "outcome, details, request_id, prev_hash, hash"
)


def ndjson_line(row: Sequence[Any]) -> bytes:
    """One event as the ledger's NDJSON line (the stream, the export), from a row in EVENT_COLUMNS order:
    roles and details exactly as stored, which is what each hash is over."""
    return (
        orjson.dumps(
            {
                "seq": row[0],
                "at": row[1],
                "actor_id": row[2],
                "actor_roles": orjson.Fragment(row[3]),
                "terminal_id": row[4],
                "address": row[5],
                "action": row[6],
                "object_type": row[7],
                "object_id": row[8],
                "outcome": row[9],
                "details": orjson.Fragment(row[10]),
                "request_id": row[11],
                "prev_hash": row[12],
                "hash": row[13],
            }
        )
        + b"\n"
    )


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoints_checked: int = 0
    latest_checkpoint: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "checkpoints_checked": self.checkpoints_checked,
            "latest_checkpoint": self.latest_checkpoint,
        }


def verify_checkpoint_signature(
    checkpoint: Mapping[str, Any], public_keys: Mapping[str, Ed25519PublicKey]
) -> bool:
    key = public_keys.get(str(checkpoint["key_id"]))
    if key is None:
        return False
    try:
        key.verify(
            base64.b64decode(str(checkpoint["signature"])),
            checkpoint_message(int(checkpoint["seq"]), str(checkpoint["hash"]), str(checkpoint["at"])),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


class ChainVerifier:
    """Walks events in seq order in constant memory; feed it batches of row tuples in EVENT_COLUMNS order."""

    def __init__(
        self,
        *,
        start_seq: int = 1,
        start_hash: str = GENESIS_HASH,
        checkpoints: Mapping[int, str] | None = None,
    ) -> None:
        self.expected_seq = start_seq
        self.prev = bytes.fromhex(start_hash)
        self.checked = 0
        self.first_bad_seq: int | None = None
        self.reason: str | None = None
        self.checkpoints = dict(checkpoints or {})
        self.checkpoints_matched = 0

    def _fail(self, seq: int, reason: str) -> None:
        self.first_bad_seq = seq
        self.reason = reason

    def feed(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Returns False once a bad event was found (the walk stops there)."""
        if self.first_bad_seq is not None:
            return False
        prev = self.prev
        prev_hex = prev.hex()
        expected = self.expected_seq
        checkpoints = self.checkpoints
        sha256 = hashlib.sha256
        dumps = orjson.dumps
        fragment = orjson.Fragment
        checked = self.checked
        for row in rows:
            seq = row[0]
            if seq != expected:
                self._fail(expected, "missing_event" if seq > expected else "out_of_order_event")
                break
            if row[12] != prev_hex:
                self._fail(seq, "broken_link")
                break
            # The keys are written in sorted order, so this is byte for byte canonical_event_bytes()
            # (OPT_SORT_KEYS) without sorting twelve keys per event, which cost a third of feed's time.
            canonical = dumps(
                {
                    "action": row[6],
                    "actor_id": row[2],
                    "actor_roles": fragment(row[3]),
                    "address": row[5],
                    "at": row[1],
                    "details": fragment(row[10]),
                    "object_id": row[8],
                    "object_type": row[7],
                    "outcome": row[9],
                    "request_id": row[11],
                    "seq": seq,
                    "terminal_id": row[4],
                }
            )
            digest = sha256(prev + canonical).digest()
            hex_digest = digest.hex()
            if hex_digest != row[13]:
                self._fail(seq, "altered_event")
                break
            if checkpoints:
                signed = checkpoints.get(seq)
                if signed is not None:
                    if signed != hex_digest:
                        self._fail(seq, "checkpoint_mismatch")
                        break
                    self.checkpoints_matched += 1
            prev = digest
            prev_hex = hex_digest
            expected += 1
            checked += 1
        self.prev = prev
        self.expected_seq = expected
        self.checked = checked
        return self.first_bad_seq is None

    def finish(self, *, head_seq: int, head_hash: str) -> None:
        if self.first_bad_seq is not None:
            return
        last = self.expected_seq - 1
        if last > head_seq:
            self._fail(head_seq + 1, "event_beyond_head")
        elif last < head_seq:
            self._fail(last + 1, "missing_event")
        elif self.prev.hex() != head_hash:
            self._fail(last, "head_mismatch")
        elif any(seq > last for seq in self.checkpoints):
            self._fail(last + 1, "missing_event")
