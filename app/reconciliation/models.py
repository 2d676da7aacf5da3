"""Reconciliation runs against the center's inquiry record (RC-1, RC-2) and what each run found."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class ReconciliationRun(Base):
    """One reconciliation of a period: who asked, from which source, the totals and the aggregates."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    # center (fetched over the link) | file (an import of the center's NDJSON/CSV record)
    source: Mapped[str] = mapped_column(String(16))
    # SHA-256 of an imported file, so an auditor can prove which record was reconciled.
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    # The monthly schedule's "monthly:YYYY-MM": unique, so several workers never run a month twice.
    schedule_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    # running | completed | failed
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure: Mapped[str | None] = mapped_column(String(200))
    center_entries: Mapped[int] = mapped_column(Integer, default=0)
    gateway_entries: Mapped[int] = mapped_column(Integer, default=0)
    # Counts per finding kind; the findings themselves are rows of ReconciliationFinding.
    finding_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    by_terminal: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    by_day: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    approval_registers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    clean: Mapped[bool | None] = mapped_column(default=None)


class ReconciliationFinding(Base):
    """One discrepancy. Identifiers and places only: the subject is never stored here."""

    __tablename__ = "reconciliation_findings"
    __table_args__ = (Index("ix_reconciliation_findings_run_kind", "run_id", "kind", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("reconciliation_runs.id"))
    # unmatched_center | unmatched_gateway | undual_cancellation | mismatched
    kind: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(40))
    entry_kind: Mapped[str | None] = mapped_column(String(16))
    entry_id: Mapped[str | None] = mapped_column(String(40))
    center_inquiry_id: Mapped[str | None] = mapped_column(String(64))
    inquiry_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    business_date: Mapped[date | None] = mapped_column(Date)
    branch_code: Mapped[str | None] = mapped_column(String(16))
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    operator_ref: Mapped[str | None] = mapped_column(String(64))
    via: Mapped[str | None] = mapped_column(String(16))


class ReconciliationAlert(Base):
    """An alert raised by a run (a CRITICAL one when inquiries bypassed the gateway)."""

    __tablename__ = "reconciliation_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("reconciliation_runs.id"), index=True)
    # critical | high | warning
    severity: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(48))
    count: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
