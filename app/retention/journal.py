"""The deletion journal (RT-2): every deletion record, also outside the database.

A database restored from a backup made before a purge still holds the data keys that purge deleted. The
journal is the purge's memory that the restore does not roll back: one JSON line per deletion, appended
and flushed to disk before the purge commits (a purge whose commit then fails is in the journal but not in
the database, and is carried out by the next re-application — it had been approved). It holds no personal
data: ids, times, counts, the staff ids of operator and approver.

Keep it where the database backups are not (another volume, or copied with the ledger's checkpoint
export); docs/operations.md says how.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from app.config import Settings


class JournalUnreadable(Exception):
    """A line of the journal is not a deletion record: the restore cannot be trusted to be complete."""

    def __init__(self, line_no: int) -> None:
        super().__init__(f"line {line_no} of the deletion journal is not a deletion record")
        self.line_no = line_no


@dataclass(frozen=True)
class JournalEntry:
    id: str
    data_set: str
    range_from: str | None
    range_to: str
    count: int
    method: str
    operator: str
    approver: str
    at: str

    @property
    def cutoff(self) -> datetime:
        return datetime.fromisoformat(self.range_to)


def journal_path(settings: Settings) -> Path:
    return settings.deletion_journal_path or settings.data_dir / "deletions.jsonl"


def append(settings: Settings, entry: JournalEntry) -> None:
    path = journal_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(entry), ensure_ascii=True, sort_keys=True) + "\n"
    with path.open("a", encoding="ascii") as journal:
        journal.write(line)
        journal.flush()
        os.fsync(journal.fileno())


def entries(settings: Settings) -> list[JournalEntry]:
    """Every deletion the journal holds, in the order they were made; none when there is no journal yet."""
    path = journal_path(settings)
    if not path.exists():
        return []
    read: list[JournalEntry] = []
    for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = JournalEntry(**json.loads(line.decode("ascii")))
            if entry.cutoff.tzinfo is None:
                raise ValueError("a cutoff without its time zone")
        except (ValueError, TypeError) as error:
            raise JournalUnreadable(line_no) from error
        read.append(entry)
    return read
