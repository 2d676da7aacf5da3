"""HQ inquiry requests from branches (照会依頼, HQ-1) and HQ's daily sign-off of its balance (HQ-3)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class HqRequest(Base):
    """A branch's request that HQ run one inquiry for it; executed by exactly one HQ inquiry."""

    __tablename__ = "hq_requests"
    __table_args__ = (UniqueConstraint("inquiry_id", name="uq_hq_requests_inquiry_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The requesting branch, its operator and terminal.
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    customer_status: Mapped[str] = mapped_column(String(16))
    # Sealed like an inquiry's subject (EN-1), with the same blind index and pseudonym, so a subject
    # search (AC-6) finds the request and the inquiry that executed it alike.
    subject_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    subject_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    subject_wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    subject_kek_id: Mapped[str] = mapped_column(String(40))
    subject_index: Mapped[str] = mapped_column(String(64), index=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    consent_type: Mapped[str] = mapped_column(String(40))
    consent_reference: Mapped[str] = mapped_column(String(80))
    consent_obtained_on: Mapped[date] = mapped_column(Date)
    # Keyed hash of what the branch asked for; HQ's inquiry must carry exactly this content.
    content_hash: Mapped[str] = mapped_column(String(64))
    # The branch's return option when the request was made (HQ-2): subject_list | count_list | none.
    return_option: Mapped[str] = mapped_column(String(16))
    # pending | executed
    status: Mapped[str] = mapped_column(String(16), index=True)
    approval_method: Mapped[str | None] = mapped_column(String(32))
    approval_confirmer_id: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    inquiry_id: Mapped[str | None] = mapped_column(String(36))
    executed_by: Mapped[str | None] = mapped_column(String(40))
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The business date of the executing inquiry: the day whose HQ balance counts this request.
    executed_business_date: Mapped[date | None] = mapped_column(Date, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HqDailySignOff(Base):
    """HQ's sign-off of one business day's balance; possible only while the counts balance (HQ-3)."""

    __tablename__ = "hq_sign_offs"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    signed_by: Mapped[str] = mapped_column(String(40))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hq_executed: Mapped[int] = mapped_column(Integer)
    branch_requests_executed: Mapped[int] = mapped_column(Integer)
    own_initiative: Mapped[int] = mapped_column(Integer)
