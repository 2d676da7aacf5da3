"""Exporting a range of the ledger (LG-2: checkpoints and events "can be exported outside the system").

The range is given in time but exported as a contiguous run of ``seq``: events are stamped when they
are recorded and numbered when their transaction commits, so ``at`` is not strictly ordered by ``seq``,
and a time filter alone would leave holes that an offline verifier must treat as deletions. Rows are
read in pages through the driver connection in one snapshot and written as they come: memory stays flat
however long the range.

NDJSON lines are the ``/audit/events`` shape. CSV has the same columns; ``actor_roles`` and ``details``
are their exact stored JSON text and a SQL NULL is written as ``\\N`` (PostgreSQL COPY's convention), so
the verifier rebuilds the hashed bytes exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from app.audit.ledger import EVENT_COLUMNS, ndjson_line
from app.audit.service import VERIFY_BATCH, _RawReader
from app.clock import rfc3339
from app.db import Database

COLUMNS = tuple(name.strip() for name in EVENT_COLUMNS.split(","))
# NULL is written as \N and every backslash of a value doubled (as PostgreSQL's COPY does), so a value
# that is itself "\N" (a header sent to the gateway can be) is not read back as NULL.
CSV_NULL = "\\N"


def csv_cell(value: Any) -> Any:
    if value is None:
        return CSV_NULL
    return value.replace("\\", "\\\\") if isinstance(value, str) else value


def csv_value(cell: str) -> str | None:
    return None if cell == CSV_NULL else cell.replace("\\\\", "\\")


# Built from a constant column list, never from input.
_RANGE = f"SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"  # noqa: S608


@dataclass(frozen=True)
class ExportSummary:
    first_seq: int | None
    last_seq: int | None
    count: int
    sha256: str
    format: str


def _csv_encoder() -> tuple[Callable[[Any], bytes], bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def encode(row: Any) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(value) for value in row])
        return buffer.getvalue().encode()

    buffer.seek(0)
    writer.writerow(COLUMNS)
    header = buffer.getvalue().encode()
    return encode, header


async def seq_range(
    db: Database, *, since: datetime | None, until: datetime | None
) -> tuple[int, int] | None:
    """The contiguous seq range from the first event at/after ``since`` to the last one before ``until``."""
    async with db.engine.connect() as conn, _RawReader(conn, db.dialect) as reader:
        if since is None:
            low = (await reader.fetch("SELECT min(seq) FROM audit_events"))[0][0]
        else:
            low = (await reader.fetch("SELECT min(seq) FROM audit_events WHERE at >= $1", rfc3339(since)))[0][
                0
            ]
        if until is None:
            high = (await reader.fetch("SELECT max(seq) FROM audit_events"))[0][0]
        else:
            high = (await reader.fetch("SELECT max(seq) FROM audit_events WHERE at < $1", rfc3339(until)))[0][
                0
            ]
    if low is None or high is None or int(high) < int(low):
        return None
    return int(low), int(high)


async def export_events(
    db: Database,
    out: BinaryIO,
    *,
    first_seq: int,
    last_seq: int,
    fmt: str = "ndjson",
    batch: int = VERIFY_BATCH,
) -> ExportSummary:
    """Write events ``first_seq``..``last_seq`` to ``out`` page by page; returns the count and a SHA-256
    of exactly the bytes written (for the export's register entry)."""
    if fmt not in ("ndjson", "csv"):
        raise ValueError("format is ndjson or csv")
    digest = hashlib.sha256()
    count = 0
    encode: Callable[[Any], bytes]
    if fmt == "csv":
        encode, header = _csv_encoder()
        out.write(header)
        digest.update(header)
    else:
        encode = ndjson_line
    after = first_seq - 1
    async with db.engine.connect() as conn, _RawReader(conn, db.dialect) as reader:
        while after < last_seq:
            rows = await reader.fetch(_RANGE, after, last_seq, batch)
            if not rows:
                break
            chunk = b"".join(encode(row) for row in rows)
            out.write(chunk)
            digest.update(chunk)
            count += len(rows)
            after = int(rows[-1][0])
    return ExportSummary(
        first_seq=first_seq if count else None,
        last_seq=after if count else None,
        count=count,
        sha256=digest.hexdigest(),
        format=fmt,
    )
