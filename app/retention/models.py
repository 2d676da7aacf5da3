from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class PurgeRequest(Base):
    """A security officer's request to destroy what has passed its use period; a second officer's approval
    carries it out (RT-1: every deletion names its operator and its approver)."""

    __tablename__ = "retention_purge_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    data_set: Mapped[str] = mapped_column(String(40))
    # Everything of the data set received before this instant has passed its use period.
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    # What the cutoff covered when the request was made; the approval destroys what it covers then.
    expected_count: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(400))
    # pending | executed
    status: Mapped[str] = mapped_column(String(16), index=True)
    # 1 while pending, NULL once carried out: the unique constraint lets one purge wait at a time, also
    # when two officers request at the same moment.
    pending_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(80))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deletion_id: Mapped[str | None] = mapped_column(String(36))


class DeletionRecord(Base):
    """One deletion (RT-1): data set, range, count, method, operator, approver, time. Also written to the
    deletion journal outside the database, from which a restored database re-applies it (RT-2)."""

    __tablename__ = "retention_deletions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    data_set: Mapped[str] = mapped_column(String(40))
    # The items destroyed were received from range_from (the earliest of them; None when there were none)
    # up to, not including, range_to (the request's cutoff).
    range_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    range_to: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32))
    operator: Mapped[str] = mapped_column(String(80))
    approver: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
