"""Cursor pagination of lists (api.md: ``?limit=`` default 100, max 1000, ``?cursor=``; ``items`` and
``next_cursor``), for every list ordered by a time and an id.

The cursor is where the last page ended, ``<time in UTC>Z|<id>``, in characters a client may put into a
query string as they are (an offset's "+" would arrive as a space). Keyset, not offset: a row inserted
while a client pages through is neither skipped nor shown twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import ValidationFailed

PageLimit = Annotated[int, Query(ge=1, le=1000)]
PageCursor = Annotated[str | None, Query(min_length=1, max_length=120)]

Row = TypeVar("Row")  # the ORM class a page lists


def cursor_after(at: datetime, row_id: str) -> str:
    """The cursor of a page that ended at the row with this time and id."""
    return f"{at.astimezone(UTC).isoformat().removesuffix('+00:00')}Z|{row_id}"


def position_of(cursor: str) -> tuple[datetime, str]:
    """The time and id a page ended at, as :func:`cursor_after` wrote them. The cursor comes back from the
    client, so anything else — a date alone, a time without its zone — is refused, never a 500."""
    written, separator, last_id = cursor.partition("|")
    # Cursors before 2026-12-03 ended the time in "+00:00"; a client that put one into a URL unencoded
    # sent "+" as a space. An ISO time never holds a space, so reading it back as "+" is unambiguous.
    written = written.replace(" ", "+")
    try:
        after: datetime | None = datetime.fromisoformat(written)
        if after is not None and after.tzinfo is not None:
            # In UTC here, where a time that has none (an offset pushing year 1 or 9999 past the edge)
            # is refused, not later when the database driver converts it (a 500).
            after = after.astimezone(UTC)
    except (ValueError, OverflowError):
        after = None
    if not separator or not last_id or after is None or after.tzinfo is None:
        raise ValidationFailed("The cursor is not valid: pass next_cursor as it was returned")
    return after, last_id


async def keyset_page(
    session: AsyncSession,
    query: Select[Row],
    *,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[str],
    limit: int,
    cursor: str | None,
) -> tuple[list[Row], str | None]:
    """One page of ``query`` in (``at``, ``row_id``) order, and the cursor of the next (None at the end)."""
    if cursor:
        after, last_id = position_of(cursor)
        query = query.where((at > after) | ((at == after) & (row_id > last_id)))
    rows: list[Any] = list((await session.scalars(query.order_by(at, row_id).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, cursor_after(getattr(last, at.key), getattr(last, row_id.key))
