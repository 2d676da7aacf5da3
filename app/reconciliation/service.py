"""Reconciliation with the center's inquiry record (RC-1, RC-2; guideline VI(1)① note 1).

Reconciled from the center's side: every entry the center holds for our member in the period — fetched
over the center link or imported from the center's file — must match a gateway record. An entry with
none means an inquiry bypassed the gateway: a CRITICAL alert (ledger event, metric, stored alert).
Also reported: gateway records the center never recorded, cancellations and corrections without the
two-person control of CC-1, discrepancies between matched records (branch, operator, terminal,
subject, time), per-terminal usage, per-day counts (RC-2: gateway = center, each list's total = its
lines) and the approval-number register balance of every day with approval numbers (method A2).

Bounded memory: the center's entries are streamed into a staging table in chunks and compared there
with set-based SQL (anti-joins on indexed keys), never held in a dict; the findings are written with
``INSERT ... SELECT``. The staging table is a TEMP table of the one connection a run holds (its own,
unlogged, indexed once after the load); its rows carry a keyed blind index of the subject, never a
name, and it is dropped when the run ends (or with the connection, if the process dies).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.schema import CreateIndex, CreateTable

from app.audit.ledger import Actor, record
from app.audit.models import AuditEvent
from app.center.interface import CenterLinkError, CenterRecordEntry
from app.center.kana import normalise_kana
from app.center.record_file import RecordFileError
from app.clock import TOKYO, business_date_of, rfc3339
from app.context import AppContext
from app.db import UTCDateTime
from app.errors import (
    BusinessDateNotBegun,
    CenterRecordUnavailable,
    NotFound,
    RecordFileInvalid,
    ValidationFailed,
)
from app.inquiry.approvals import register_balance
from app.inquiry.models import ApprovalNumber, Inquiry, InquiryCorrection, OutboxMessage
from app.lists.models import DailyList, DailyListLine
from app.monitoring.jobs import output_digest, record_job_run
from app.reconciliation.models import (
    ReconciliationAlert,
    ReconciliationFinding,
    ReconciliationRun,
)

log = logging.getLogger("shokai.reconciliation")

MAX_PERIOD_DAYS = 92
STAGING_CHUNK = 10_000
PROGRESS_EVERY = 100_000
PG_COMPARE_WORK_MEM = "256MB"
FINDINGS_SHOWN = 1000
# Center inquiry ids named in the CRITICAL ledger event; the full list is in the stored findings.
ALERT_SAMPLE = 20

Progress = Callable[[str, int], None]

_FINDING_COLUMNS = (
    "run_id",
    "kind",
    "reason",
    "entry_kind",
    "entry_id",
    "center_inquiry_id",
    "inquiry_id",
    "at",
    "business_date",
    "branch_code",
    "terminal_id",
    "operator_ref",
    "via",
)

# Severity and stable code of the alert each kind of finding raises.
ALERTS: dict[str, tuple[str, str]] = {
    "unmatched_center": ("critical", "INQUIRY_BYPASSED_GATEWAY"),
    "unmatched_gateway": ("high", "GATEWAY_RECORD_MISSING_AT_CENTER"),
    "undual_cancellation": ("high", "CANCELLATION_WITHOUT_TWO_PERSON_CONTROL"),
    "mismatched": ("warning", "CENTER_ENTRY_MISMATCH"),
    "daily_count": ("high", "DAILY_COUNT_MISMATCH"),
    "list_total": ("high", "LIST_TOTAL_MISMATCH"),
    "approval_register": ("high", "APPROVAL_REGISTER_IMBALANCE"),
}


SEVERITY_RANK = {"critical": 0, "high": 1, "warning": 2}


@dataclass(frozen=True)
class Period:
    date_from: date
    date_to: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time(0), tzinfo=TOKYO).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=TOKYO).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.date_from + timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]


def _check_period(date_from: date, date_to: date, *, today: date) -> Period:
    if date_to < date_from:
        raise ValidationFailed("'to' is before 'from'")
    if date_from > today:
        # Neither side has a record of those days: "clean" would say nothing was wrong with nothing.
        raise BusinessDateNotBegun(f"{date_from.isoformat()} has not begun yet")
    if (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(f"A reconciliation covers at most {MAX_PERIOD_DAYS} days")
    return Period(date_from, date_to)


# -- the run ------------------------------------------------------------------------------------------


async def reconcile_center(
    ctx: AppContext,
    *,
    actor: Actor,
    date_from: date,
    date_to: date,
    entries: AsyncIterator[CenterRecordEntry] | None = None,
    source: str = "center",
    source_sha256: str | None = None,
    schedule_key: str | None = None,
    progress: Progress | None = None,
) -> ReconciliationRun:
    """Reconcile the center's record of ``date_from``..``date_to`` against the gateway (RC-1, RC-2).

    ``entries`` defaults to the center link's record for our member code; the CLI passes an imported
    file. With ``schedule_key`` a second call for the same key returns the run already made.
    """
    period = _check_period(date_from, date_to, today=business_date_of(ctx.clock.now()))
    run, created = await _start_run(
        ctx,
        actor=actor,
        period=period,
        source=source,
        source_sha256=source_sha256,
        schedule_key=schedule_key,
    )
    if not created:
        return run
    if entries is None:
        entries = ctx.center.inquiry_record(ctx.settings.center_member_code, date_from, date_to)
    try:
        async with _staging_connection(ctx) as connection:
            center = await _stage(ctx, connection, period=period, entries=entries, progress=progress)
            if progress is not None:
                progress("comparing", center.staged)
            finished = await _compare_and_finish(
                ctx, connection, run=run, period=period, actor=actor, center=center
            )
    except RecordFileError as exc:
        await _fail(ctx, run=run, actor=actor, reason=f"file_line_{exc.line_no}")
        raise RecordFileInvalid(f"Line {exc.line_no} of the file: {exc.reason}") from None
    except CenterLinkError as exc:
        await _fail(ctx, run=run, actor=actor, reason=type(exc).__name__)
        raise CenterRecordUnavailable() from None
    except BaseException:
        await _fail(ctx, run=run, actor=actor, reason="internal_error")
        raise
    ctx.metrics.reconciliation_runs.labels("clean" if finished.clean else "findings").inc()
    # LG-4: the run is a job run too, with its counts and a hash of its outcome.
    await record_job_run(
        ctx,
        job="reconciliation.center",
        started_at=finished.started_at,
        counts={
            "center_entries": finished.center_entries,
            "gateway_entries": finished.gateway_entries,
            "findings": sum(finished.finding_counts.values()),
        },
        output_sha256=output_digest(
            [
                f"run={finished.id}",
                f"source={finished.source_sha256 or ''}",
                *(f"{kind}={count}" for kind, count in finished.finding_counts.items()),
            ]
        ),
        actor=actor,
    )
    return finished


async def _start_run(
    ctx: AppContext,
    *,
    actor: Actor,
    period: Period,
    source: str,
    source_sha256: str | None,
    schedule_key: str | None,
) -> tuple[ReconciliationRun, bool]:
    run = ReconciliationRun(
        id=str(uuid.uuid4()),
        period_from=period.date_from,
        period_to=period.date_to,
        source=source,
        source_sha256=source_sha256,
        schedule_key=schedule_key,
        requested_by=actor.id or "system",
        state="running",
        started_at=ctx.clock.now(),
        center_entries=0,
        gateway_entries=0,
        finding_counts={},
        by_terminal=[],
        by_day=[],
        approval_registers=[],
    )
    try:
        async with ctx.db.session() as session:
            session.add(run)
            record(
                session,
                actor=actor,
                action="reconciliation.started",
                object_type="reconciliation_run",
                object_id=run.id,
                details={
                    "from": period.date_from.isoformat(),
                    "to": period.date_to.isoformat(),
                    "source": source,
                    "source_sha256": source_sha256,
                    "schedule_key": schedule_key,
                },
            )
            await session.commit()
    except IntegrityError:
        # Another worker took this scheduled month first: its run is the month's run.
        async with ctx.db.read_session() as session:
            existing = await session.scalar(
                select(ReconciliationRun).where(ReconciliationRun.schedule_key == schedule_key)
            )
        if existing is None:
            raise
        return existing, False
    return run, True


async def _fail(ctx: AppContext, *, run: ReconciliationRun, actor: Actor, reason: str) -> None:
    async with ctx.db.session() as session:
        stored = await session.get(ReconciliationRun, run.id)
        if stored is not None:
            stored.state = "failed"
            stored.failure = reason[:200]
            stored.finished_at = ctx.clock.now()
            # A failed scheduled month is tried again on the next tick.
            stored.schedule_key = None
        record(
            session,
            actor=actor,
            action="reconciliation.failed",
            object_type="reconciliation_run",
            object_id=run.id,
            outcome="failure",
            details={"reason": reason[:200]},
        )
        await session.commit()
    ctx.metrics.reconciliation_runs.labels("failed").inc()


# -- staging the center's record ------------------------------------------------------------------------


# The run's staging table: a TEMP table of the connection the run holds, so each run has its own, it
# is loaded without indexes, with no write-ahead log and no row-by-row delete at the end, and it
# disappears with the connection if the process dies. Its indexes are built once, after the load.
# It holds a keyed blind index of the subject (the same as ``inquiries.subject_index``), never the name
# or the birth date.
STAGING = Table(
    "reconciliation_staging",
    MetaData(),
    Column("entry_id", String(40)),
    Column("kind", String(16)),
    Column("center_inquiry_id", String(64)),
    Column("idempotency_key", String(128)),
    Column("at", UTCDateTime),
    Column("business_date", Date),
    Column("branch_code", String(16)),
    Column("terminal_id", String(40)),
    Column("operator_ref", String(64)),
    Column("via", String(16)),
    # The keyed blind index of the subject (the same as ``inquiries.subject_index``), never a name.
    Column("subject_index", String(64)),
    prefixes=["TEMPORARY"],
)
# By center id: what the gateway side and the cancellations are compared on, built after the load.
_STAGING_BY_CENTER_ID = Index("ix_reconciliation_staging_cid", STAGING.c.center_inquiry_id)
# By idempotency key: needed only for gateway inquiries the center id did not find, so built only then.
_STAGING_BY_KEY = Index("ix_reconciliation_staging_key", STAGING.c.idempotency_key)
_STAGING_COLUMNS = tuple(column.name for column in STAGING.columns)
# Tokyo has had no daylight saving time since 1951 (the comparison's SQL assumes the same).
_TOKYO_OFFSET = timedelta(hours=9)


@asynccontextmanager
async def _staging_connection(ctx: AppContext) -> AsyncIterator[AsyncConnection]:
    """One connection for the whole run, with an empty staging table; closed at the end, table and all.

    The connection is closed rather than returned to the pool: that drops the TEMP table with it, where
    a ``DROP TABLE`` makes SQLite visit every page of a million rows to free them (2 s at 1,000,000).
    """
    async with ctx.db.engine.connect() as connection:
        try:
            # Left by nothing (the connection never goes back to the pool with it), but cheap to be sure.
            await connection.execute(text(f"DROP TABLE IF EXISTS {STAGING.name}"))
            await connection.execute(CreateTable(STAGING))  # without its indexes: built after the load
            await connection.commit()
            yield connection
        finally:
            await connection.invalidate()


@dataclass
class _CenterCounts:
    """The center's side of the per-terminal and per-day counts, taken while staging.

    Counted in Python as the entries stream past (a dict increment each), so the staging table is not
    scanned again for them after the load.
    """

    staged: int = 0
    # (branch, terminal, kind, via) -> entries
    by_terminal: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    # (business date, kind) -> entries
    by_day: Counter[tuple[date, str]] = field(default_factory=Counter)


async def _stage(
    ctx: AppContext,
    connection: AsyncConnection,
    *,
    period: Period,
    entries: AsyncIterator[CenterRecordEntry],
    progress: Progress | None,
) -> _CenterCounts:
    member_code = ctx.settings.center_member_code
    start, end = period.start, period.end
    # The gateway's own blind index (app/inquiry/sealing.py): the same person gives the same value.
    subject_index = ctx.keyring.blind_indexer(domain="subject")
    as_text = ctx.db.dialect != "postgresql"
    counts = _CenterCounts()
    by_terminal, by_day = counts.by_terminal, counts.by_day
    chunk: list[tuple[Any, ...]] = []
    staged = 0
    # PostgreSQL loads a chunk in its own process while the next one is parsed here: the COPY of the
    # previous chunk stays in flight (one at a time). Not on SQLite: its inserts run in a thread of this
    # process and need the GIL for every row, which parsing would hold.
    overlap = ctx.db.dialect == "postgresql"
    loading: asyncio.Future[None] | None = None
    try:
        async for entry in entries:
            at = entry.at.astimezone(UTC)
            # A file may hold other members' entries or more days than asked for: only ours, only the period.
            if entry.member_code != member_code or not start <= at < end:
                continue
            staged += 1
            day = (at + _TOKYO_OFFSET).date()
            kind, subject = entry.kind, entry.subject
            by_terminal[(entry.branch_code, entry.terminal_id, kind, entry.via)] += 1
            by_day[(day, kind)] += 1
            chunk.append(
                (
                    entry.entry_id,
                    kind,
                    entry.center_inquiry_id,
                    entry.idempotency_key,
                    # On SQLite exactly the texts SQLAlchemy stores for DateTime (naive UTC: the UTC
                    # time's text without its "+00:00", cheaper than a naive copy) and Date.
                    at.isoformat(" ", "microseconds")[:26] if as_text else at,
                    day.isoformat() if as_text else day,
                    entry.branch_code,
                    entry.terminal_id,
                    entry.operator_ref,
                    entry.via,
                    subject_index(f"{normalise_kana(subject.name_kana)}|{subject.birth_date.isoformat()}"),
                )
            )
            if len(chunk) >= STAGING_CHUNK:
                if loading is not None:
                    await loading
                loading = asyncio.ensure_future(_insert_staging(ctx, connection, chunk))
                if not overlap:
                    await loading
                chunk = []
            if progress is not None and staged % PROGRESS_EVERY == 0:
                progress("read", staged)
        if loading is not None:
            await loading
        if chunk:
            await _insert_staging(ctx, connection, chunk)
    finally:
        if loading is not None and not loading.done():
            # The file failed while a chunk was loading: let it end before the connection is closed.
            await asyncio.wait([loading])
    await connection.execute(CreateIndex(_STAGING_BY_CENTER_ID))
    await connection.commit()
    counts.staged = staged
    return counts


async def _insert_staging(
    ctx: AppContext, connection: AsyncConnection, rows: Sequence[tuple[Any, ...]]
) -> None:
    """One chunk in its own short transaction, so SQLite's writer lock is never held for the whole read."""
    if ctx.db.dialect == "postgresql":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(STAGING.name, records=rows, columns=_STAGING_COLUMNS)
    else:
        # Plain driver executemany: the ORM's per-row type processing would double the cost.
        placeholders = ", ".join("?" for _ in _STAGING_COLUMNS)
        await connection.exec_driver_sql(
            f"INSERT INTO {STAGING.name} ({', '.join(_STAGING_COLUMNS)}) VALUES ({placeholders})",  # noqa: S608
            list(rows),
        )
    await connection.commit()


# -- comparing ----------------------------------------------------------------------------------------


def _finding_select(run_id: str, kind: str, reason: Any, source: Any, **columns: Any) -> Any:
    values = [
        literal(run_id),
        literal(kind),
        reason if not isinstance(reason, str) else literal(reason),
        *(columns.get(name, null()) for name in _FINDING_COLUMNS[3:]),
    ]
    return source.with_only_columns(*values)


# SQLite joins by nested loops only. Looking each staging row up in ``inquiries`` by key jumps about the
# primary-key index at random (keys are UUIDs); by center id it walks that index in order, because the
# center numbers its inquiries as it receives them and the staging rows follow the file's order. At
# 1,000,000 entries: 11 s by key, 3-4 s by center id (same machine, same load). SQLite prefers the
# unique primary key whenever ``id = ?`` is indexable, so the key is compared as ``id || ''`` there.


def _unindexed(column: Any) -> Any:
    return column.concat("")


def _difference(s: Any, i: Any) -> Any:
    """The first way a center entry differs from the gateway inquiry it names ('' when none)."""
    return case(
        (and_(i.center_inquiry_id.is_not(None), i.center_inquiry_id != s.center_inquiry_id), "center_id"),
        (s.branch_code != i.branch_code, "branch"),
        (s.operator_ref != i.operator_id, "operator"),
        (s.terminal_id != func.coalesce(i.terminal_id, "-"), "terminal"),
        (s.subject_index != i.subject_index, "subject"),
        # The center cannot have recorded an inquiry before its draft existed at the gateway.
        (s.at < i.created_at, "before_draft"),
        else_="",
    )


def _entry_finding(run_id: str, query: Any, kind: Any, reason: Any) -> Any:
    s = STAGING.c
    return query.with_only_columns(
        literal(run_id),
        kind,
        reason,
        s.kind,
        s.entry_id,
        s.center_inquiry_id,
        Inquiry.id,
        s.at,
        s.business_date,
        s.branch_code,
        s.terminal_id,
        s.operator_ref,
        s.via,
    )


def _center_side(run_id: str, dialect: str) -> list[Any]:
    """Every center inquiry entry against the gateway record it names.

    An entry whose idempotency key is no gateway inquiry and whose center id is on none either is a
    bypass (``unmatched_center``); one whose gateway inquiry differs is ``mismatched``. One pass over
    the staging rows writes both (PostgreSQL hash-joins it). On SQLite two: first the entries found
    under both their key and their center id, looked up by center id in order; then the few others,
    looked up by key as in the one pass. Together they find exactly what the one pass finds.
    """
    s, i = STAGING.c, Inquiry
    by_center_id = Inquiry.__table__.alias("by_center_id")
    matched = i.id.is_not(None)
    difference = _difference(s, i)
    bypassed = and_(~matched, ~exists().where(by_center_id.c.center_inquiry_id == s.center_inquiry_id))
    by_key = (
        select(STAGING)
        .outerjoin(i, i.id == s.idempotency_key)
        .where(s.kind == "inquiry", or_(bypassed, and_(matched, difference != "")))
    )
    one_pass = _entry_finding(
        run_id,
        by_key,
        case((matched, "mismatched"), else_="unmatched_center"),
        case((matched, difference), else_="no_gateway_record"),
    )
    if dialect == "postgresql":
        return [one_pass]
    recorded = Inquiry.__table__.alias("as_recorded")
    found_as_recorded = select(recorded.c.id).where(
        recorded.c.center_inquiry_id == s.center_inquiry_id,
        _unindexed(recorded.c.id) == s.idempotency_key,
    )
    as_recorded = (
        select(STAGING)
        .join(i, and_(i.center_inquiry_id == s.center_inquiry_id, _unindexed(i.id) == s.idempotency_key))
        .where(s.kind == "inquiry", difference != "")
    )
    return [
        _entry_finding(run_id, as_recorded, literal("mismatched"), difference),
        one_pass.where(~exists(found_as_recorded)),
    ]


# Each side of the period holds what the center recorded in it: the gateway counts what it sent by when
# the center recorded it (its own time where the center said), not by when the answer was stored or the
# cancellation confirmed. An answer stored after midnight, or a cancellation confirmed before midnight
# and delivered after, otherwise shows on one side of each of two days.


def _sent_in(period: Period) -> Any:
    i = Inquiry
    return and_(
        i.center_inquiry_id.is_not(None),
        i.center_recorded_at >= period.start,
        i.center_recorded_at < period.end,
    )


def _delivered_in(period: Period, kind: str, inquiry_id: Any) -> Any:
    """The inquiry's ``kind`` message reached the center, which recorded it in the period."""
    o = OutboxMessage
    return exists().where(
        o.inquiry_id == inquiry_id,
        o.kind == kind,
        o.center_recorded_at >= period.start,
        o.center_recorded_at < period.end,
    )


def _cancelled_at_center_in(period: Period) -> Any:
    """Gateway cancellations of sent inquiries whose cancellation the outbox delivered in the period."""
    i = Inquiry
    return and_(
        i.status == "cancelled", i.center_inquiry_id.is_not(None), _delivered_in(period, "cancel", i.id)
    )


def _center_columns() -> dict[str, Any]:
    """A finding's columns taken from the staged center entry it is about."""
    s = STAGING.c
    return {
        "entry_kind": s.kind,
        "entry_id": s.entry_id,
        "center_inquiry_id": s.center_inquiry_id,
        "at": s.at,
        "business_date": s.business_date,
        "branch_code": s.branch_code,
        "terminal_id": s.terminal_id,
        "operator_ref": s.operator_ref,
        "via": s.via,
    }


def _gateway_columns() -> dict[str, Any]:
    i = Inquiry
    return {
        "inquiry_id": i.id,
        "center_inquiry_id": i.center_inquiry_id,
        "business_date": i.business_date,
        "branch_code": i.branch_code,
        "terminal_id": i.terminal_id,
        "operator_ref": i.operator_id,
        "via": literal("gateway"),
    }


def _unmatched_gateway(run_id: str, period: Period) -> list[Any]:
    s, i = STAGING.c, Inquiry
    # Looked up by center id: both sides follow sending order there, so the lookups walk the staging
    # index in order. Those the center id does not find are looked up by key after (_found_by_key).
    inquiries = select(i).where(
        _sent_in(period),
        ~exists().where(s.kind == "inquiry", s.center_inquiry_id == i.center_inquiry_id),
    )
    cancellations = select(i).where(
        _cancelled_at_center_in(period),
        ~exists().where(s.kind == "cancellation", s.center_inquiry_id == i.center_inquiry_id),
    )
    return [
        _finding_select(
            run_id,
            "unmatched_gateway",
            "inquiry_missing_at_center",
            inquiries,
            entry_kind=literal("inquiry"),
            at=i.sent_at,
            **_gateway_columns(),
        ),
        _finding_select(
            run_id,
            "unmatched_gateway",
            "cancellation_missing_at_center",
            cancellations,
            entry_kind=literal("cancellation"),
            at=i.cancelled_at,
            **_gateway_columns(),
        ),
    ]


def _found_by_key(run_id: str) -> Any:
    """Takes back the gateway inquiries the center recorded under another center id but with their key."""
    s, f = STAGING.c, ReconciliationFinding
    return delete(f).where(
        f.run_id == run_id,
        f.kind == "unmatched_gateway",
        f.reason == "inquiry_missing_at_center",
        exists().where(s.kind == "inquiry", s.idempotency_key == f.inquiry_id),
    )


def _undual_cancellations(run_id: str, period: Period) -> list[Any]:
    """CC-1: every cancellation at the center went through the gateway with a second person (corrections:
    :func:`_correction_findings`)."""
    s, i = STAGING.c, Inquiry
    no_second_person = or_(i.cancel_confirmer_id.is_(None), i.cancel_confirmer_id == i.cancelled_by)
    reason = case(
        (s.via == "direct", "made_at_center"),
        (i.id.is_(None), "no_gateway_record"),
        (i.status != "cancelled", "not_cancelled_at_gateway"),
        (no_second_person, "no_second_person"),
        else_="",
    )
    center_side = (
        select(STAGING)
        .outerjoin(i, i.center_inquiry_id == s.center_inquiry_id)
        .where(s.kind == "cancellation", reason != "")
    )
    # Cancellations of inquiries the center holds that it has no cancellation entry for (a delivery still
    # pending). A draft cancelled before it was sent, or an inquiry a security officer withdrew under an
    # emergency switch (app/inquiry/held.py), never reached the center: there is nothing to cancel there.
    gateway_side = select(i).where(
        i.status == "cancelled",
        i.sent_at.is_not(None),
        i.cancelled_at >= period.start,
        i.cancelled_at < period.end,
        no_second_person,
        ~exists().where(
            s.kind.in_(("cancellation", "correction")),
            s.center_inquiry_id == i.center_inquiry_id,
        ),
    )
    return [
        _finding_select(
            run_id,
            "undual_cancellation",
            reason,
            center_side,
            inquiry_id=i.id,
            **_center_columns(),
        ),
        _finding_select(
            run_id,
            "undual_cancellation",
            "no_second_person",
            gateway_side,
            entry_kind=literal("cancellation"),
            at=i.cancelled_at,
            **_gateway_columns(),
        ),
    ]


def _corrected_in(period: Period) -> Any:
    c = InquiryCorrection
    return and_(c.corrected_at >= period.start, c.corrected_at < period.end)


def _corrected_at_center_in(period: Period) -> Any:
    """Gateway corrections of the center's record (a corrected purpose) the outbox delivered in the
    period (an inquiry is corrected at the center once at most: one message, one key)."""
    c = InquiryCorrection
    return and_(c.at_center.is_(True), _delivered_in(period, "correct", c.inquiry_id))


def _correction_findings(run_id: str, period: Period) -> list[Any]:
    """CC-1 for corrections, matched by the center inquiry id they correct.

    A correction at the center that no gateway correction accounts for (made at the center, or with no
    gateway record) is reported like a bypass; a gateway correction the center never recorded as
    missing at the center; a correction approved by no second person like an undual cancellation.
    """
    s, i, c = STAGING.c, Inquiry, InquiryCorrection
    unaccounted = select(STAGING).where(
        s.kind == "correction",
        or_(
            s.via == "direct",
            ~exists().where(
                i.center_inquiry_id == s.center_inquiry_id, c.inquiry_id == i.id, c.at_center.is_(True)
            ),
        ),
    )
    corrected = select(i).join(c, c.inquiry_id == i.id)
    missing = corrected.where(
        _corrected_at_center_in(period),
        ~exists().where(
            s.kind == "correction", s.via == "gateway", s.center_inquiry_id == i.center_inquiry_id
        ),
    )
    undual = corrected.where(
        _corrected_in(period),
        or_(c.confirmer_id.is_(None), c.confirmer_id == c.corrected_by, c.confirmer_id == i.operator_id),
    )
    return [
        _finding_select(
            run_id,
            "unmatched_center",
            case((s.via == "direct", "made_at_center"), else_="no_gateway_correction"),
            unaccounted,
            **_center_columns(),
        ),
        _finding_select(
            run_id,
            "unmatched_gateway",
            "correction_missing_at_center",
            missing,
            entry_kind=literal("correction"),
            at=c.corrected_at,
            **_gateway_columns(),
        ),
        _finding_select(
            run_id,
            "undual_cancellation",
            "no_second_person",
            undual,
            entry_kind=literal("correction"),
            at=c.corrected_at,
            **_gateway_columns(),
        ),
    ]


def _tokyo_date(column: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date(func.timezone("Asia/Tokyo", column))
    # SQLite keeps naive UTC text; Tokyo has had no daylight saving time since 1951.
    return func.date(column, "+9 hours")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def _gateway_sent(
    session: AsyncSession, *, period: Period, dialect: str
) -> list[tuple[str, str, date, int]]:
    """Gateway inquiries sent in the period per branch, terminal and Tokyo day: one scan for every count."""
    i = Inquiry
    terminal = func.coalesce(i.terminal_id, "-")
    sent_day = _tokyo_date(i.center_recorded_at, dialect)
    rows = await session.execute(
        select(i.branch_code, terminal, sent_day, func.count())
        .where(_sent_in(period))
        .group_by(i.branch_code, terminal, sent_day)
    )
    return [
        (str(branch), str(terminal_id), _as_date(day), int(count)) for branch, terminal_id, day, count in rows
    ]


def _by_terminal(
    center: _CenterCounts, gateway: Sequence[tuple[str, str, date, int]]
) -> list[dict[str, Any]]:
    usage: dict[tuple[str, str], dict[str, Any]] = {}

    def row_for(branch_code: str, terminal_id: str) -> dict[str, Any]:
        return usage.setdefault(
            (branch_code, terminal_id),
            {
                "branch_code": branch_code,
                "terminal_id": terminal_id,
                "center_inquiries": 0,
                "center_cancellations": 0,
                "center_corrections": 0,
                "direct_entries": 0,
                "gateway_inquiries": 0,
            },
        )

    for (branch_code, terminal_id, kind, via), count in center.by_terminal.items():
        row = row_for(branch_code, terminal_id)
        field_name = {"inquiry": "center_inquiries", "cancellation": "center_cancellations"}.get(
            kind, "center_corrections"
        )
        row[field_name] += count
        if via == "direct":
            row["direct_entries"] += count
    for branch_code, terminal_id, _day, count in gateway:
        row_for(branch_code, terminal_id)["gateway_inquiries"] += count
    return [usage[key] for key in sorted(usage)]


async def _by_day(
    session: AsyncSession,
    *,
    period: Period,
    center: _CenterCounts,
    gateway: Sequence[tuple[str, str, date, int]],
) -> list[dict[str, Any]]:
    """RC-2 per day: gateway inquiries sent = center inquiries recorded; list totals = their lines."""
    sent: dict[date, int] = defaultdict(int)
    for _branch, _terminal, day, count in gateway:
        sent[day] += count
    line_count = (
        select(func.count())
        .where(DailyListLine.list_id == DailyList.id, DailyListLine.line_type == "inquiry")
        .scalar_subquery()
    )
    lists: dict[date, list[tuple[str, bool]]] = defaultdict(list)
    for list_id, day, total, lines in await session.execute(
        select(DailyList.id, DailyList.business_date, DailyList.inquiries_total, line_count).where(
            DailyList.business_date >= period.date_from, DailyList.business_date <= period.date_to
        )
    ):
        lists[_as_date(day)].append((str(list_id), int(total) == int(lines)))
    days = []
    for day in period.days():
        checked = lists.get(day, [])
        inquiries = center.by_day[(day, "inquiry")]
        days.append(
            {
                "business_date": day.isoformat(),
                "center_inquiries": inquiries,
                "gateway_inquiries": sent[day],
                "center_cancellations": center.by_day[(day, "cancellation")],
                "balanced": inquiries == sent[day],
                "lists_checked": len(checked),
                "lists_unbalanced": sorted(list_id for list_id, ok in checked if not ok),
            }
        )
    return days


async def _approval_registers(
    session: AsyncSession, *, period: Period, now: datetime
) -> list[dict[str, Any]]:
    """The A2 register balance (issued = used + voided + expired + outstanding) of every active day."""
    registers = []
    in_register = await session.execute(
        select(ApprovalNumber.branch_code, ApprovalNumber.business_date)
        .where(
            ApprovalNumber.business_date >= period.date_from,
            ApprovalNumber.business_date <= period.date_to,
        )
        .group_by(ApprovalNumber.branch_code, ApprovalNumber.business_date)
    )
    pairs = {(str(branch_code), _as_date(day)) for branch_code, day in in_register}
    # The days the ledger says numbers were issued as well: a day whose every number was lost from the
    # register still has its issues in the ledger, and must show as unbalanced, not be left out. Grouped
    # by UTC date and whether the hour is 15:00 or later (the next day in Tokyo): the same SQL on both
    # backends, and a few rows per branch and day.
    utc_day, tokyo_next = func.substr(AuditEvent.at, 1, 10), func.substr(AuditEvent.at, 12, 2) >= "15"
    issued = await session.execute(
        select(Inquiry.branch_code, utc_day, tokyo_next)
        .join(Inquiry, Inquiry.id == AuditEvent.object_id)
        .where(
            AuditEvent.action == "approval_number.issued",
            AuditEvent.at >= rfc3339(period.start),
            AuditEvent.at < rfc3339(period.end),
        )
        .group_by(Inquiry.branch_code, utc_day, tokyo_next)
    )
    for branch_code, day_text, next_day in issued:
        pairs.add((str(branch_code), date.fromisoformat(day_text) + timedelta(days=1 if next_day else 0)))
    for branch_code, day in sorted(pairs, key=lambda pair: (pair[1], pair[0])):
        counts = await register_balance(session, branch_code=branch_code, business_date=day, now=now)
        closed = counts["used"] + counts["voided"] + counts["expired"] + counts["outstanding"]
        registers.append(
            {
                "branch_code": branch_code,
                "business_date": day.isoformat(),
                **counts,
                "balanced": counts["issued"] == closed,
            }
        )
    return registers


async def _finding_counts(session: AsyncSession, *, run_id: str) -> dict[str, int]:
    return {
        str(kind): int(count)
        for kind, count in await session.execute(
            select(ReconciliationFinding.kind, func.count())
            .where(ReconciliationFinding.run_id == run_id)
            .group_by(ReconciliationFinding.kind)
        )
    }


async def _compare_and_finish(
    ctx: AppContext,
    connection: AsyncConnection,
    *,
    run: ReconciliationRun,
    period: Period,
    actor: Actor,
    center: _CenterCounts,
) -> ReconciliationRun:
    columns = [getattr(ReconciliationFinding, name) for name in _FINDING_COLUMNS]
    i = Inquiry
    # On the run's own connection: the staging table is a TEMP table only it can see.
    async with ctx.db.sessionmaker(bind=connection) as session:
        if ctx.db.dialect == "postgresql":
            # Autovacuum never analyses a TEMP table; without statistics the planner plans the
            # anti-joins as nested loops over a million rows.
            await session.execute(text(f"ANALYZE {STAGING.name}"))
            # The comparison hashes a month of inquiries (about 140 MB at 1,000,000): with the default
            # 4 MB per hash it spills to disk in many batches. For this transaction only, on the server.
            await session.execute(text(f"SET LOCAL work_mem = '{PG_COMPARE_WORK_MEM}'"))
        for statement in [
            *_center_side(run.id, ctx.db.dialect),
            *_unmatched_gateway(run.id, period),
            *_undual_cancellations(run.id, period),
            *_correction_findings(run.id, period),
        ]:
            await session.execute(insert(ReconciliationFinding).from_select(columns, statement))
        counts = await _finding_counts(session, run_id=run.id)
        if counts.get("unmatched_gateway"):
            # Rare (a month with findings): only then is the staging table indexed by key as well.
            await session.execute(CreateIndex(_STAGING_BY_KEY))
            await session.execute(_found_by_key(run.id))
            counts = await _finding_counts(session, run_id=run.id)
        gateway = await _gateway_sent(session, period=period, dialect=ctx.db.dialect)
        gateway_inquiries = sum(count for *_key, count in gateway)
        gateway_cancellations = await session.scalar(
            select(func.count()).select_from(i).where(_cancelled_at_center_in(period))
        )
        gateway_corrections = await session.scalar(
            select(func.count()).select_from(InquiryCorrection).where(_corrected_at_center_in(period))
        )
        by_terminal = _by_terminal(center, gateway)
        by_day = await _by_day(session, period=period, center=center, gateway=gateway)
        registers = await _approval_registers(session, period=period, now=ctx.clock.now())
        bypass_sample = list(
            (
                await session.scalars(
                    select(ReconciliationFinding.center_inquiry_id)
                    .where(
                        ReconciliationFinding.run_id == run.id,
                        ReconciliationFinding.kind == "unmatched_center",
                    )
                    .order_by(ReconciliationFinding.id)
                    .limit(ALERT_SAMPLE)
                )
            ).all()
        )

        counts.update(
            daily_count=sum(1 for day in by_day if not day["balanced"]),
            list_total=sum(len(day["lists_unbalanced"]) for day in by_day),
            approval_register=sum(1 for register in registers if not register["balanced"]),
        )
        counts = {kind: count for kind, count in counts.items() if count}
        now = ctx.clock.now()
        stored = await session.get(ReconciliationRun, run.id, with_for_update=True)
        assert stored is not None
        stored.state = "completed"
        stored.finished_at = now
        stored.center_entries = center.staged
        stored.gateway_entries = (
            int(gateway_inquiries or 0) + int(gateway_cancellations or 0) + int(gateway_corrections or 0)
        )
        stored.finding_counts = counts
        stored.by_terminal = by_terminal
        stored.by_day = by_day
        stored.approval_registers = registers
        stored.clean = not counts
        for kind, count in counts.items():
            severity, code = ALERTS[kind]
            session.add(
                ReconciliationAlert(
                    id=str(uuid.uuid4()),
                    run_id=run.id,
                    severity=severity,
                    code=code,
                    count=count,
                    raised_at=now,
                )
            )
            details: dict[str, Any] = {"severity": severity, "code": code, "count": count}
            if kind == "unmatched_center":
                details["center_inquiry_ids"] = bypass_sample
            record(
                session,
                actor=actor,
                action="reconciliation.alert",
                object_type="reconciliation_run",
                object_id=run.id,
                outcome="alert",
                details=details,
            )
            ctx.metrics.reconciliation_alerts.labels(severity, code).inc()
            if severity == "critical":
                log.critical("reconciliation run %s: %s (%d)", run.id, code, count)
        if counts.get("unmatched_center"):
            ctx.metrics.reconciliation_bypassed_entries.inc(counts["unmatched_center"])
        record(
            session,
            actor=actor,
            action="reconciliation.completed",
            object_type="reconciliation_run",
            object_id=run.id,
            outcome="success" if stored.clean else "findings",
            details={
                "center_entries": center.staged,
                "gateway_entries": stored.gateway_entries,
                "findings": counts,
            },
        )
        await session.commit()
    return stored


# -- reading runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunView:
    run: ReconciliationRun
    findings: dict[str, list[ReconciliationFinding]]
    alerts: list[ReconciliationAlert]


async def load_run(session: AsyncSession, *, run_id: str, limit: int = FINDINGS_SHOWN) -> RunView:
    run = await session.get(ReconciliationRun, run_id)
    if run is None:
        raise NotFound("No such reconciliation run")
    findings: dict[str, list[ReconciliationFinding]] = {}
    for kind in ("unmatched_center", "unmatched_gateway", "undual_cancellation", "mismatched"):
        findings[kind] = list(
            (
                await session.scalars(
                    select(ReconciliationFinding)
                    .where(ReconciliationFinding.run_id == run_id, ReconciliationFinding.kind == kind)
                    .order_by(ReconciliationFinding.id)
                    .limit(limit)
                )
            ).all()
        )
    alerts = sorted(
        (
            await session.scalars(select(ReconciliationAlert).where(ReconciliationAlert.run_id == run_id))
        ).all(),
        # Most severe first: the bypass alert is the first thing an auditor reads.
        key=lambda alert: (SEVERITY_RANK.get(alert.severity, 9), alert.code),
    )
    return RunView(run, findings, alerts)


async def run_view(ctx: AppContext, *, run_id: str) -> RunView:
    """The run its requester just made (the run's own ledger events already record it)."""
    async with ctx.db.read_session() as session:
        return await load_run(session, run_id=run_id)


async def read_run(ctx: AppContext, session: AsyncSession, *, actor: Actor, run_id: str) -> RunView:
    """A stored run; reading it is logged (it names terminals and operators)."""
    view = await load_run(session, run_id=run_id)
    record(
        session,
        actor=actor,
        action="reconciliation.read",
        object_type="reconciliation_run",
        object_id=run_id,
    )
    await session.commit()
    return view


async def list_runs(
    session: AsyncSession, *, actor: Actor, limit: int, cursor: str | None
) -> tuple[list[ReconciliationRun], str | None]:
    """A page of stored runs, newest first; reading it is logged as reading a run is (each names its
    period and counts of findings)."""
    query = select(ReconciliationRun).order_by(
        ReconciliationRun.started_at.desc(), ReconciliationRun.id.desc()
    )
    if cursor is not None:
        anchor = await session.get(ReconciliationRun, cursor)
        if anchor is None:
            raise ValidationFailed("The cursor is not valid")
        query = query.where(
            or_(
                ReconciliationRun.started_at < anchor.started_at,
                and_(ReconciliationRun.started_at == anchor.started_at, ReconciliationRun.id < anchor.id),
            )
        )
    runs = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = runs[limit - 1].id if len(runs) > limit else None
    runs = runs[:limit]
    record(
        session,
        actor=actor,
        action="reconciliation.runs_listed",
        object_type="reconciliation_run",
        details={"cursor": cursor, "run_ids": [run.id for run in runs]},
    )
    await session.commit()
    return runs, next_cursor
