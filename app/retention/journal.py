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

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from app.config import Settings

log = logging.getLogger("shokai.retention")


class JournalUnreadable(Exception):
    """A line of the journal is not a deletion record: the restore cannot be trusted to be complete."""

    def __init__(self, line_no: int | None, message: str | None = None) -> None:
        super().__init__(message or f"line {line_no} of the deletion journal is not a deletion record")
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
    # The purge request this deletion carried out (None for a record made another way).
    purge_id: str | None = None

    @property
    def cutoff(self) -> datetime:
        return datetime.fromisoformat(self.range_to)


def journal_path(settings: Settings) -> Path:
    return settings.deletion_journal_path or settings.data_dir / "deletions.jsonl"


def append(settings: Settings, entry: JournalEntry) -> None:
    path = journal_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(entry), ensure_ascii=True, sort_keys=True) + "\n").encode("ascii")
    created = not path.exists()
    # Owner only, like the key file: it names staff and when their data went.
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "ab+") as journal:
        # Held until the file is closed. The purge's database locks already keep two approvals apart;
        # this keeps anything else that appends (a second gateway sharing the file) from taking an
        # append still being written for a torn tail and cutting it.
        fcntl.flock(journal.fileno(), fcntl.LOCK_EX)
        _cut_torn_tail(journal)
        journal.write(line)
        journal.flush()
        os.fsync(journal.fileno())
    if created:
        # A new file's name is durable only once its directory is: else a power cut could lose the file
        # while the purge's commit survives.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _cut_torn_tail(journal: BinaryIO) -> None:
    """Drop an unterminated last line before appending, so it does not run into the new one. It is an
    append a crash cut off, made before its purge's commit: that purge never committed."""
    size = journal.seek(0, os.SEEK_END)
    if size == 0:
        return
    journal.seek(size - 1)
    if journal.read(1) == b"\n":
        return
    journal.seek(0)
    content = journal.read()
    journal.truncate(content.rfind(b"\n") + 1)
    journal.seek(0, os.SEEK_END)


def entries(settings: Settings) -> list[JournalEntry]:
    """Every deletion the journal holds, in the order they were made; none when there is no journal yet."""
    path = journal_path(settings)
    if path.is_dir():
        raise JournalUnreadable(None, f"the deletion journal {path} is a directory, not a file")
    if not path.exists():
        return []
    read: list[JournalEntry] = []
    content = path.read_bytes()
    lines = content.splitlines()
    if content and not content.endswith(b"\n"):
        # An append cut off by a crash: it came before its purge's commit, so that purge never committed.
        log.warning(
            "deletion journal: the last line has no end and is passed over", extra={"line": len(lines)}
        )
        lines = lines[:-1]
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = JournalEntry(**json.loads(line.decode("ascii")))
            times = [entry.cutoff, datetime.fromisoformat(entry.at)]
            if entry.range_from is not None:
                times.append(datetime.fromisoformat(entry.range_from))
            if any(at.tzinfo is None for at in times):
                raise ValueError("a time without its zone")
            if not (isinstance(entry.count, int) and 0 <= entry.count and 0 < len(entry.id) <= 36):
                raise ValueError("not a deletion record's count or id")
        except (ValueError, TypeError) as error:
            raise JournalUnreadable(line_no) from error
        read.append(entry)
    return read
