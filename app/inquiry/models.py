"""Inquiries, their sealed subject and response, approval numbers, the outbox and idempotency records."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class InquiryFlag(StrEnum):
    """What an inquiry is marked with besides its status; the panel labels each one (app/panel/i18n.py)."""

    # The subject is the operator (or a relative) per the policy's self-inquiry check.
    SELF_INQUIRY = "self_inquiry"
    # A confirmer declined the draft; cleared when the operator corrects it.
    APPROVAL_REFUSED = "approval_refused"
    # Released with a document mismatch (method B): escalated.
    SUSPECTED_MISUSE = "suspected_misuse"
    # Its record was corrected (CC-1); the correction is its own record.
    CORRECTED = "corrected"
    # Withdrawn by a security officer while an emergency switch held it, never sent (IR-1).
    WITHDRAWN_UNDER_SWITCH = "withdrawn_under_switch"


class Inquiry(Base):
    __tablename__ = "inquiries"
    __table_args__ = (
        UniqueConstraint("number", name="uq_inquiries_number"),
        # One HQ request is executed by at most one inquiry, even when two HQ operators race (HQ-1).
        UniqueConstraint("hq_request_id", name="uq_inquiries_hq_request_id"),
        # Led by the date, it serves every per-day query; the shared-subject anomaly (LG-3) reads it alone.
        Index("ix_inquiries_business_date_subject", "business_date", "subject_pseudonym", "operator_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Human number per branch and business day, e.g. 001-20261124-0007.
    number: Mapped[str] = mapped_column(String(32))
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    operator_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    customer_status: Mapped[str] = mapped_column(String(16))
    # The subject's identity, sealed (EN-1); found through the keyed blind index of kana + birth date.
    subject_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    subject_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    subject_wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    subject_kek_id: Mapped[str] = mapped_column(String(40))
    subject_index: Mapped[str] = mapped_column(String(64), index=True)
    # Keyed pseudonym used in the ledger, never the name.
    subject_pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    consent_type: Mapped[str] = mapped_column(String(40))
    consent_reference: Mapped[str] = mapped_column(String(80))
    consent_obtained_on: Mapped[date] = mapped_column(Date)
    # SHA-256 over the draft's content; an approval number is bound to it.
    draft_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), index=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    approval_method: Mapped[str | None] = mapped_column(String(32))
    approval_confirmer_id: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approval_terminal_id: Mapped[str | None] = mapped_column(String(40))
    center_inquiry_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # When the gateway stored the center's answer (or refusal). Indexed for the list schedule, which
    # finds the days of inquiries sent long after them.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the center recorded the inquiry, by the center's clock where it said (its answer's, its
    # NO_TRADE_INFO refusal's received_at), else sent_at. The center files its record by this time, so
    # reconciliation counts the gateway's side by it too: an answer stored after midnight belongs to the
    # day the center received the inquiry. Set together with sent_at.
    center_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    center_result_code: Mapped[str | None] = mapped_column(String(40))
    response_state: Mapped[str] = mapped_column(String(16), default="none")
    released_by: Mapped[str | None] = mapped_column(String(40))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    document_check: Mapped[str | None] = mapped_column(String(16))
    # What the releasing confirmer wrote about the document check, match or mismatch: sealed (EN-1).
    release_note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    release_note_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    release_note_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    release_note_kek_id: Mapped[str | None] = mapped_column(String(40))
    hq_request_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by: Mapped[str | None] = mapped_column(String(40))
    cancel_confirmer_id: Mapped[str | None] = mapped_column(String(40))
    # Why it was cancelled, as staff wrote it: sealed like the subject (EN-1, app/crypto/sealed_text.py).
    cancel_reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    cancel_reason_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    cancel_reason_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    cancel_reason_kek_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InquiryCorrection(Base):
    """A correction of a sent inquiry's record (CC-1): what was wrong, what it is now, who and why.

    Made under the same two-person control as a cancellation; one per inquiry (a record wrong again is
    cancelled and inquired anew). The inquiry row keeps what was sent and approved; ``changes`` maps each
    corrected field to ``[as recorded, corrected to]``. Only ``purpose`` is held by the center, so
    ``at_center`` says whether the correction went there too.
    """

    __tablename__ = "inquiry_corrections"
    __table_args__ = (
        UniqueConstraint("inquiry_id", name="uq_inquiry_corrections_inquiry_id"),
        # The daily lists read a branch's corrections of one day.
        Index("ix_inquiry_corrections_branch_corrected_at", "branch_code", "corrected_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.id"))
    branch_code: Mapped[str] = mapped_column(String(8))
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    corrected_by: Mapped[str] = mapped_column(String(40))
    confirmer_id: Mapped[str] = mapped_column(String(40))
    approval_method: Mapped[str] = mapped_column(String(32))
    # Why, as staff wrote it (required): sealed (EN-1).
    reason_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    reason_kek_id: Mapped[str | None] = mapped_column(String(40))
    changes: Mapped[dict[str, list[object]]] = mapped_column(JSON)
    at_center: Mapped[bool] = mapped_column(Boolean)


class SealedResponse(Base):
    """The center's answer, encrypted with its own data key; deleting ``wrapped_key`` destroys it (RT-1)."""

    __tablename__ = "inquiry_responses"

    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.id"), primary_key=True)
    center_inquiry_id: Mapped[str] = mapped_column(String(64))
    # Indexed for the purge of responses past their use period (RT-1).
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(40))
    # The deletion record (retention_deletions.id) that destroyed it: its count, and the inquiry's trace.
    deletion_id: Mapped[str | None] = mapped_column(String(36), index=True)


class InquiryNumberCounter(Base):
    __tablename__ = "inquiry_number_counters"

    branch_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class ApprovalNumber(Base):
    """A one-time number a confirmer issues for one draft (method A2); only its keyed hash is stored."""

    __tablename__ = "approval_numbers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.id"), index=True)
    branch_code: Mapped[str] = mapped_column(String(8), index=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    issued_by: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_terminal_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    number_hash: Mapped[str] = mapped_column(String(64))
    # submit (approves sending this draft) | cancel | correct (approves cancelling or correcting it, CC-1)
    purpose: Mapped[str] = mapped_column(String(16), default="submit")
    draft_hash: Mapped[str] = mapped_column(String(64))
    # outstanding | used | voided | expired
    state: Mapped[str] = mapped_column(String(16), index=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(String(40))


class OutboxMessage(Base):
    """A message to the center waiting to be delivered (ER-3); the idempotency key never changes."""

    __tablename__ = "center_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.id"), index=True)
    # inquire | cancel | correct
    kind: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # When the center recorded what the row carried, by the center's clock where its answer said (an
    # inquiry's received_at, a cancellation's cancelled_at, a correction's corrected_at), else when it
    # was delivered; set together with delivered_at. Reconciliation counts cancellations and corrections
    # in the period by it: one confirmed before midnight and delivered after is on the center's next day.
    center_recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A sender claims a row for a short lease so two workers never send it at the same moment.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A cancellation's or correction's JSON (its reason is staff's words): sealed (EN-1), bound to the
    # idempotency key since the row's id is not known until it is written.
    payload_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload_kek_id: Mapped[str | None] = mapped_column(String(40))


class IdempotencyRecord(Base):
    """The first answer to a creating/sending POST, replayed for the same key and body (ER-2)."""

    __tablename__ = "idempotency_records"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(120), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PolicyVersion(Base):
    """Every inquiry-policy version the gateway has run with (PL-3: versioned, changes audited)."""

    __tablename__ = "policy_versions"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content: Mapped[str] = mapped_column(Text)
