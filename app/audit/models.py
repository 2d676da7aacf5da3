"""Ledger tables. ``audit_events`` and ``audit_checkpoints`` are append-only (a PostgreSQL trigger
refuses UPDATE, DELETE and TRUNCATE); ``audit_chain_head`` is the single row that serialises appends."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # The auditor's scans select a period's events of a few actions (LG-3, AU-8); led by the action and
    # carrying what they read, this index answers them without reading the wide event rows.
    __table_args__ = (
        Index("ix_audit_events_action_at", "action", "at", "actor_id", "terminal_id", "object_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # RFC 3339 UTC with microseconds, fixed width: the exact text that is hashed, and it sorts.
    at: Mapped[str] = mapped_column(String(27), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(80), index=True)
    # Canonical JSON text (hashed as it is stored).
    actor_roles: Mapped[str] = mapped_column(Text)
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    last_checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    last_checkpoint_at: Mapped[str | None] = mapped_column(String(27))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(27))
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))


class AuditReportRun(Base):
    """One stored run of an audit analysis (LG-3 anomalies, AU-8 confirmer usage), acknowledged by an auditor.

    Findings name users, terminals and subject pseudonyms, never people's names. The run is never
    changed afterwards except for its acknowledgement.
    """

    __tablename__ = "audit_report_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # anomalies | confirmer_usage
    kind: Mapped[str] = mapped_column(String(32), index=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    # None: the whole bank; a branch manager's on-demand run is scoped to their branch.
    branch_code: Mapped[str | None] = mapped_column(String(8))
    # scheduled | on_demand
    trigger: Mapped[str] = mapped_column(String(16))
    # "anomalies:2026-11-24" for the daily scheduled run, so several workers store it once; None on demand.
    schedule_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    generated_by: Mapped[str] = mapped_column(String(80))
    # Canonical JSON text.
    thresholds: Mapped[str] = mapped_column(Text)
    findings: Mapped[str] = mapped_column(Text)
    findings_count: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    acknowledged_by: Mapped[str | None] = mapped_column(String(40))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The auditor's words on the findings: sealed (EN-1).
    acknowledgement_note_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    acknowledgement_note_kek_id: Mapped[str | None] = mapped_column(String(40))
