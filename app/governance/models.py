"""Access requests, the access-rights register, HR events, reviews and recertification, second factors,
privileged sessions, emergency switches and incidents (AC-2…AC-5, IR-1, IR-2)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class AccessRequest(Base):
    """One requested change of a user's access: requested → approved → applied (AC-2), or rejected/expired."""

    __tablename__ = "access_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # grant | revoke | unlock | reset_password | reactivate
    action: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(400))
    effective_from: Mapped[date | None] = mapped_column(Date)
    # When a granted right ends by itself (the register's expiry date).
    role_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # pending | approved | rejected | applied | expired
    status: Mapped[str] = mapped_column(String(16), index=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A request not approved and applied by then lapses: stale approvals are not applied months later.
    lapses_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(80))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejected_by: Mapped[str | None] = mapped_column(String(80))
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str | None] = mapped_column(String(400))
    applied_by: Mapped[str | None] = mapped_column(String(80))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_role_id: Mapped[int | None] = mapped_column(Integer)
    # reset_password: the approver's half of the one-time password, sealed until the approver collects it
    # once. The setter sees only the other half, so no administrator ever knows the whole password.
    secret_half_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_half_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_half_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_half_kek_id: Mapped[str | None] = mapped_column(String(40))


class AccessRegisterEntry(Base):
    """The append-only access-rights register (AC-3): never updated, never deleted."""

    __tablename__ = "access_register"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # grant | revoke | suspend | reactivate | unlock | password_reset | deactivate | create | lift
    change: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    role: Mapped[str | None] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(String(8))
    user_role_id: Mapped[int | None] = mapped_column(Integer)
    access_request_id: Mapped[str | None] = mapped_column(String(36))
    # access_request | hr_event | recertification | expiry | branch_closure | deactivation | bootstrap
    # | user_creation | emergency
    source: Mapped[str] = mapped_column(String(24))
    source_id: Mapped[str | None] = mapped_column(String(36))
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_by: Mapped[str] = mapped_column(String(80))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str] = mapped_column(String(80))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(400))
    effective_from: Mapped[date] = mapped_column(Date)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HrEvent(Base):
    __tablename__ = "hr_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # transfer | leave | resignation | return
    kind: Mapped[str] = mapped_column(String(16))
    effective_on: Mapped[date] = mapped_column(Date)
    to_branch_code: Mapped[str | None] = mapped_column(String(8))
    received_from: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending (effective in the future) | applied
    status: Mapped[str] = mapped_column(String(16), index=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReviewTask(Base):
    """Something a person must look at and close: an HR event's rights, a privileged session (AC-4, AC-5)."""

    __tablename__ = "review_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # hr_transfer | hr_leave | hr_resignation | hr_return | privileged_session
    kind: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    branch_code: Mapped[str | None] = mapped_column(String(8))
    source_id: Mapped[str | None] = mapped_column(String(36))
    # open | closed
    status: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(400))


class RecertificationCampaign(Base):
    __tablename__ = "recertification_campaigns"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # scheduled | on_demand | release
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(400))
    started_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # open | closed
    status: Mapped[str] = mapped_column(String(16), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecertificationItem(Base):
    """One held right a named attester must confirm or revoke before the campaign's deadline."""

    __tablename__ = "recertification_items"
    __table_args__ = (UniqueConstraint("campaign_id", "user_role_id", name="uq_recertification_items_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("recertification_campaigns.id"), index=True)
    user_role_id: Mapped[int] = mapped_column(ForeignKey("user_roles.id"))
    user_id: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(String(8))
    # branch_manager (of branch_code) | access_approver (HQ and bank-wide roles)
    attester_role: Mapped[str] = mapped_column(String(32))
    # attested | revoked | lapsed (not attested by the deadline: revoked automatically)
    decision: Mapped[str | None] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TotpEnrolment(Base):
    """A user's TOTP second factor (AU-8, AC-5); the shared secret is sealed like any other secret."""

    __tablename__ = "totp_enrolments"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    secret_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    secret_wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    secret_kek_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last 30-second step accepted: a code is good once (no replay within its window).
    last_used_step: Mapped[int | None] = mapped_column(Integer)


class PrivilegedSession(Base):
    """One use of an administrator role, with its reason; alerted and reviewed by someone else (AC-5)."""

    __tablename__ = "privileged_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    auth_session_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(400))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(80))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str | None] = mapped_column(String(400))


class EmergencySuspension(Base):
    """An emergency switch (IR-1): imposed by one security officer at once; lifted by two, one asking
    and another lifting it (the switch stays on in between)."""

    __tablename__ = "emergency_suspensions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # user | terminal | branch | all
    scope: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(400))
    # active | lifted
    status: Mapped[str] = mapped_column(String(16), index=True)
    imposed_by: Mapped[str] = mapped_column(String(80))
    imposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sessions_ended: Mapped[int] = mapped_column(Integer, default=0)
    # The first of the two people who lift it: who asked, when and why.
    lift_requested_by: Mapped[str | None] = mapped_column(String(80))
    lift_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lift_request_reason: Mapped[str | None] = mapped_column(String(400))
    lifted_by: Mapped[str | None] = mapped_column(String(80))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lift_reason: Mapped[str | None] = mapped_column(String(400))


class Incident(Base):
    """An incident record with restricted visibility (IR-2)."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Title, cause and recurrence prevention are the officers' words about what happened to whom: sealed
    # (EN-1, app/crypto/sealed_text.py), as the affected subjects are pseudonyms.
    title_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    title_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    title_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    title_kek_id: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    # open | closed
    status: Mapped[str] = mapped_column(String(16), index=True)
    opened_by: Mapped[str] = mapped_column(String(80))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Keyed pseudonyms of affected subjects, never names.
    affected_subjects: Mapped[list[str]] = mapped_column(JSON, default=list)
    branch_code: Mapped[str | None] = mapped_column(String(8))
    window_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # item -> {"done_at": ..., "by": ..., "note": ...} for supervisor_ppc, individuals, center, publication
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cause_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    cause_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    cause_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    cause_kek_id: Mapped[str | None] = mapped_column(String(40))
    recurrence_prevention_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    recurrence_prevention_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    recurrence_prevention_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    recurrence_prevention_kek_id: Mapped[str | None] = mapped_column(String(40))
    closed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IncidentEntry(Base):
    """One line of an incident's timeline; appended, never edited."""

    __tablename__ = "incident_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(80))
    # opened | note | checklist | closed
    kind: Mapped[str] = mapped_column(String(16))
    # Sealed like the incident's own texts; bound to the entry's id, so written once the id is known.
    text_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    text_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    text_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    text_kek_id: Mapped[str | None] = mapped_column(String(40))
