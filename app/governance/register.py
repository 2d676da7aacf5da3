"""The access-rights register (AC-3): every grant, change and revocation, with who asked, who approved,
who set it, when, why, and from when until when. Rows are only ever appended (triggers refuse UPDATE
and DELETE on SQLite and PostgreSQL, and TRUNCATE on PostgreSQL: migrations 0007, 0008), and each append
is in the same transaction as the change it records.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.clock import business_date_of, rfc3339
from app.governance.models import AccessRegisterEntry
from app.lists.formats import csv_safe


@dataclass(frozen=True)
class Decision:
    """The three named people of a change and when each acted (AC-2)."""

    requested_by: str
    requested_at: datetime
    approved_by: str
    approved_at: datetime
    set_by: str
    set_at: datetime


def append(
    session: AsyncSession,
    *,
    change: str,
    user_id: str,
    role: str | None,
    branch_code: str | None,
    user_role_id: int | None,
    source: str,
    source_id: str | None,
    decision: Decision,
    reason: str,
    effective_from: date | None = None,
    expires_at: datetime | None = None,
    access_request_id: str | None = None,
) -> AccessRegisterEntry:
    entry = AccessRegisterEntry(
        recorded_at=decision.set_at,
        change=change,
        user_id=user_id,
        role=role,
        branch_code=branch_code,
        user_role_id=user_role_id,
        access_request_id=access_request_id,
        source=source,
        source_id=source_id,
        requested_by=decision.requested_by,
        requested_at=decision.requested_at,
        approved_by=decision.approved_by,
        approved_at=decision.approved_at,
        set_by=decision.set_by,
        set_at=decision.set_at,
        reason=reason[:400],
        effective_from=effective_from or business_date_of(decision.set_at),
        expires_at=expires_at,
    )
    session.add(entry)
    return entry


async def entries(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    branch_code: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> list[AccessRegisterEntry]:
    query = select(AccessRegisterEntry).where(AccessRegisterEntry.seq > after_seq)
    if user_id is not None:
        query = query.where(AccessRegisterEntry.user_id == user_id)
    if branch_code is not None:
        query = query.where(AccessRegisterEntry.branch_code == branch_code)
    query = query.order_by(AccessRegisterEntry.seq)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.scalars(query)).all())


CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "change",
    "user_id",
    "role",
    "branch_code",
    "source",
    "source_id",
    "access_request_id",
    "requested_by",
    "requested_at",
    "approved_by",
    "approved_at",
    "set_by",
    "set_at",
    "reason",
    "effective_from",
    "expires_at",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    # A reason typed by a person must not become a formula when the export is opened in Excel.
    return csv_safe(str(value))


def to_csv(rows: list[AccessRegisterEntry]) -> str:
    """UTF-8 with BOM for Excel, like the daily lists (DL-3)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(getattr(row, column)) for column in CSV_COLUMNS])
    return "\ufeff" + buffer.getvalue()


async def read_page(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: str | None,
    branch_code: str | None,
    after_seq: int,
    limit: int,
) -> list[AccessRegisterEntry]:
    """``limit`` entries after ``after_seq``; the read is in the ledger (who looked at whose rights)."""
    rows = await entries(session, user_id=user_id, branch_code=branch_code, after_seq=after_seq, limit=limit)
    _record_read(
        session,
        actor=actor,
        action="access_register.read",
        filters=(user_id, branch_code, after_seq),
        rows=rows,
    )
    await session.commit()
    return rows


async def export_csv(
    session: AsyncSession, *, actor: Actor, user_id: str | None, branch_code: str | None, after_seq: int
) -> str:
    """Every entry after ``after_seq`` as CSV; the export is in the ledger with the file's SHA-256, so the
    copy a batch job or an auditor took can be shown to be the one the gateway gave."""
    rows = await entries(session, user_id=user_id, branch_code=branch_code, after_seq=after_seq)
    text = to_csv(rows)
    _record_read(
        session,
        actor=actor,
        action="access_register.exported",
        filters=(user_id, branch_code, after_seq),
        rows=rows,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    await session.commit()
    return text


def _record_read(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    filters: tuple[str | None, str | None, int],
    rows: list[AccessRegisterEntry],
    sha256: str | None = None,
) -> None:
    user_id, branch_code, after_seq = filters
    details: dict[str, object] = {
        "user_id": user_id,
        "branch_code": branch_code,
        "after_seq": after_seq,
        "count": len(rows),
        "last_seq": rows[-1].seq if rows else None,
    }
    if sha256 is not None:
        details["sha256"] = sha256
    record(session, actor=actor, action=action, object_type="access_register", details=details)
