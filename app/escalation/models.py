"""The escalation record, written by the capability that raises it and handled here."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import JSON, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

# A list-line escalation's note names its line, written and read only through these two.
_LINE_NOTE = re.compile(r"line ([0-9]{1,6})")


def line_note(line_no: int) -> str:
    return f"line {line_no}"


def noted_line(note: str | None) -> str | None:
    """The line number a list-line escalation's note names, or None."""
    found = _LINE_NOTE.fullmatch(note) if note else None
    return found.group(1) if found else None


# An HQ balance escalation's note holds the day's three figures as they were when it was raised.
_BALANCE_NOTE = re.compile(r"hq_executed ([0-9]{1,9}), branch_requests ([0-9]{1,9}), own ([0-9]{1,9})")


def balance_note(hq_executed: int, branch_requests: int, own_initiative: int) -> str:
    return f"hq_executed {hq_executed}, branch_requests {branch_requests}, own {own_initiative}"


def noted_balance(note: str | None) -> tuple[int, int, int] | None:
    """HQ's executed count, the branches' executed requests and HQ's own inquiries a note names."""
    found = _BALANCE_NOTE.fullmatch(note) if note else None
    if found is None:
        return None
    hq_executed, branch_requests, own = (int(figure) for figure in found.groups())
    return hq_executed, branch_requests, own


class Escalation(Base):
    """A notification for the branch manager and HQ compliance (mismatch, overdue list, ...).

    It stays open until someone entitled to handle it acknowledges it with what was done; nothing else
    changes it, and the acknowledgement is in the ledger.
    """

    __tablename__ = "escalations"
    # The oversight page's two queries, open ones by when raised and handled ones by when closed, both
    # start from acknowledged_at.
    __table_args__ = (Index("ix_escalations_acknowledged_at_created_at", "acknowledged_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    branch_code: Mapped[str] = mapped_column(String(8), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the system wrote about it: a line number, the day's figures, a center code. Never staff's words.
    note: Mapped[str | None] = mapped_column(String(400))
    # What the raising confirmer wrote (a mismatch's circumstances): sealed (EN-1).
    remark_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    remark_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    remark_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    remark_kek_id: Mapped[str | None] = mapped_column(String(40))
    # The person whose finding raised it (the releasing or checking confirmer); none for the system's.
    raised_by: Mapped[str | None] = mapped_column(String(40))
    # Others the raiser names as concerned (the operator of a list line): they may not close it either.
    concerns: Mapped[list[str] | None] = mapped_column(JSON)
    acknowledged_by: Mapped[str | None] = mapped_column(String(40))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What was done, as the handler wrote it: sealed (EN-1).
    acknowledgement_note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_kek_id: Mapped[str | None] = mapped_column(String(40))
