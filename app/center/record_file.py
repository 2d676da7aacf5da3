"""The center's inquiry record as a file (RC-1): what an auditor receives from the center.

Two formats carry the same fields as :class:`~app.center.interface.CenterRecordEntry`:

* NDJSON (``.ndjson`` / ``.jsonl``): one entry per line, exactly what the simulator's
  ``GET /center/v1/inquiry-record.ndjson`` streams;
* CSV (``.csv``, UTF-8, a BOM allowed): a header row with :data:`CSV_COLUMNS`, the subject flattened
  to ``name_kana`` and ``birth_date``, empty ``idempotency_key`` for entries made at the center.

Files are read line by line, so a month of a million entries costs the memory of one line. A line that
does not fit the contract raises :class:`RecordFileError` naming the line number only: the line holds a
person's name and must not reach a log or an error message.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson
from pydantic import ValidationError

from app.center.interface import CenterRecordEntry

CSV_COLUMNS = (
    "entry_id",
    "kind",
    "center_inquiry_id",
    "at",
    "member_code",
    "branch_code",
    "terminal_id",
    "operator_ref",
    "purpose",
    "name_kana",
    "birth_date",
    "via",
    "idempotency_key",
)
_CHUNK = 1000


class RecordFileError(ValueError):
    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no = line_no
        self.reason = reason


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _ndjson_entries(handle: IO[bytes]) -> Iterator[CenterRecordEntry]:
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield CenterRecordEntry.model_validate_json(line)
        except ValidationError:
            raise RecordFileError(line_no, "not a center inquiry-record entry") from None


def _csv_entries(handle: IO[str]) -> Iterator[CenterRecordEntry]:
    reader = csv.DictReader(handle)
    missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise RecordFileError(1, f"the header lacks {', '.join(sorted(missing))}")
    for row in reader:
        try:
            yield CenterRecordEntry.model_validate(
                {
                    **row,
                    "subject": {"name_kana": row["name_kana"], "birth_date": row["birth_date"]},
                    "idempotency_key": row["idempotency_key"] or None,
                }
            )
        except ValidationError:
            raise RecordFileError(reader.line_num, "not a center inquiry-record entry") from None


def read_record_file_sync(path: Path) -> Iterator[CenterRecordEntry]:
    """The entries of an NDJSON or CSV record file, in file order."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as text:
            yield from _csv_entries(text)
    else:
        with path.open("rb") as raw:
            yield from _ndjson_entries(raw)


async def read_record_file(path: Path) -> AsyncIterator[CenterRecordEntry]:
    """:func:`read_record_file_sync` as the async iterator the reconciliation reads links through."""
    for count, entry in enumerate(read_record_file_sync(path), start=1):
        yield entry
        if count % _CHUNK == 0:
            # Parsing a thousand lines takes milliseconds; handing control back between them keeps the
            # event loop responsive without a thread per file. Entries are handed on one at a time:
            # holding a thousand parsed entries alive made the cyclic GC cost as much as the parsing.
            await asyncio.sleep(0)


def ndjson_line(entry: CenterRecordEntry) -> bytes:
    return entry.model_dump_json().encode() + b"\n"


def write_ndjson(path: Path, entries: Iterable[CenterRecordEntry]) -> int:
    count = 0
    with path.open("wb") as handle:
        for entry in entries:
            handle.write(ndjson_line(entry))
            count += 1
    return count


def write_csv(path: Path, entries: Iterable[CenterRecordEntry]) -> int:
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            data = orjson.loads(entry.model_dump_json())
            writer.writerow(
                [
                    *(data[column] for column in CSV_COLUMNS[:9]),
                    data["subject"]["name_kana"],
                    data["subject"]["birth_date"],
                    data["via"],
                    data["idempotency_key"] or "",
                ]
            )
            count += 1
    return count
