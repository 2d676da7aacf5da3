"""Daily subject and count lists (methods C and D, DL-1, DL-2): immutable versions, checked lines."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class DailyList(Base):
    """One version of one branch's list of one kind for one day; its content never changes once written."""

    __tablename__ = "daily_lists"
    __table_args__ = (
        UniqueConstraint(
            "branch_code", "business_date", "kind", "version", name="uq_daily_lists_day_version"
        ),
        UniqueConstraint(
            "branch_code", "kind", "sequence", "version", name="uq_daily_lists_sequence_version"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    # subject | count
    kind: Mapped[str] = mapped_column(String(16))
    # Gapless per branch and kind; every version of a day's list shares it.
    sequence: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    supersedes: Mapped[str | None] = mapped_column(String(36))
    supplement_reason: Mapped[str | None] = mapped_column(String(40))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    generated_by: Mapped[str] = mapped_column(String(80))
    # SHA-256 of the canonical content; the content itself is sealed because subject lists name people.
    content_sha256: Mapped[str] = mapped_column(String(64))
    content_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    content_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    content_wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    content_kek_id: Mapped[str] = mapped_column(String(40))
    no_inquiries: Mapped[bool] = mapped_column(Boolean)
    inquiries_total: Mapped[int] = mapped_column(Integer)
    responses_delivered: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending | confirmed | superseded (overdue is pending past due_at)
    state: Mapped[str] = mapped_column(String(16), index=True)
    confirmed_by: Mapped[str | None] = mapped_column(String(40))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    late_reason: Mapped[str | None] = mapped_column(String(400))
    responses_in_hand: Mapped[int | None] = mapped_column(Integer)
    attested_no_inquiries: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DailyListLine(Base):
    """The check state of one line; who and what the line is about lives in the sealed content."""

    __tablename__ = "daily_list_lines"

    list_id: Mapped[str] = mapped_column(ForeignKey("daily_lists.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_type: Mapped[str] = mapped_column(String(16))
    inquiry_id: Mapped[str] = mapped_column(String(36), index=True)
    operator_id: Mapped[str] = mapped_column(String(40))
    # None until checked: matched | mismatch | document_missing
    check: Mapped[str | None] = mapped_column(String(20))
    checked_by: Mapped[str | None] = mapped_column(String(40))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The checker's note (staff's words, often about the subject): sealed (EN-1).
    note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    note_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    note_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    note_kek_id: Mapped[str | None] = mapped_column(String(40))


class ListSequence(Base):
    __tablename__ = "daily_list_sequences"

    branch_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)
