"""Bulk inserts (``insert_many`` in app/db.py): COPY on PostgreSQL, an executemany on SQLite.

What a caller relies on, on both backends: every row arrives as given, NULLs and aware instants
included, inside the caller's transaction (a rollback leaves nothing); and a key that is already
there fails as SQLAlchemy's ``IntegrityError``, which is how list generation recognises that another
generator was first.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError

from app.context import AppContext
from app.db import insert_many
from app.demo import DemoCredentials
from app.lists.models import DailyList, DailyListLine

LINES: Table = DailyListLine.__table__  # type: ignore[assignment]
AT = datetime(2026, 11, 13, 1, 0, tzinfo=UTC)


def daily_list(list_id: str | None = None) -> DailyList:
    """A list for the lines to belong to (its content does not matter here)."""
    return DailyList(
        id=list_id or str(uuid.uuid4()),
        branch_code="001",
        business_date=date(2026, 11, 13),
        kind="count",
        sequence=1,
        version=1,
        generated_at=AT,
        generated_by="system",
        content_sha256="0" * 64,
        content_sealed=b"",
        content_nonce=b"",
        content_wrapped_key=b"",
        content_kek_id="kek-1",
        no_inquiries=False,
        inquiries_total=2,
        responses_delivered=2,
        due_at=AT + timedelta(days=3),
        state="pending",
        late=False,
        attested_no_inquiries=False,
    )


def _line(list_id: str, line_no: int, **check: object) -> dict[str, object]:
    return {
        "list_id": list_id,
        "line_no": line_no,
        "line_type": "inquiry",
        "inquiry_id": f"inquiry-{line_no}",
        "operator_id": "op001",
        **check,
    }


async def test_rows_arrive_as_given_and_only_when_the_transaction_commits(
    ctx: AppContext, demo: DemoCredentials
) -> None:
    daily = daily_list()
    # The note's sealed bytes go in as given, like every other column.
    note = {
        "note_sealed": b"\x01sealed",
        "note_nonce": b"n" * 12,
        "note_wrapped_key": b"w" * 40,
        "note_kek_id": "kek-1",
    }
    checked = {"check": "matched", "checked_by": "cf001", "checked_at": AT + timedelta(hours=9), **note}
    no_note = dict.fromkeys(note)
    unchecked = {"check": None, "checked_by": None, "checked_at": None, **no_note}
    async with ctx.db.session() as session:
        session.add(daily)
        await session.flush()
        await insert_many(session, LINES, [_line(daily.id, 1, **checked), _line(daily.id, 2, **unchecked)])
        await session.rollback()
    async with ctx.db.session() as session:
        assert (await session.scalars(select(DailyListLine))).all() == []
        session.add(daily_list(daily.id))
        await session.flush()
        await insert_many(session, LINES, [_line(daily.id, 1, **checked), _line(daily.id, 2, **unchecked)])
        await session.commit()
    async with ctx.db.session() as session:
        rows = (await session.scalars(select(DailyListLine).order_by(DailyListLine.line_no))).all()
    got = [
        (r.line_no, r.inquiry_id, r.check, r.checked_by, r.checked_at, {k: getattr(r, k) for k in note})
        for r in rows
    ]
    assert got == [
        (1, "inquiry-1", "matched", "cf001", AT + timedelta(hours=9), note),
        (2, "inquiry-2", None, None, None, no_note),
    ]


async def test_a_key_already_there_is_an_integrity_error(ctx: AppContext, demo: DemoCredentials) -> None:
    daily = daily_list()
    async with ctx.db.session() as session:
        session.add(daily)
        await session.flush()
        await insert_many(session, LINES, [_line(daily.id, 1)])
        await session.commit()
    async with ctx.db.session() as session:
        with pytest.raises(IntegrityError):
            await insert_many(session, LINES, [_line(daily.id, 2), _line(daily.id, 1)])
        await session.rollback()
        lines = (await session.scalars(select(DailyListLine.line_no))).all()
    assert lines == [1]
