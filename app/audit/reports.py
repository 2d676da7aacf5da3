"""Stored report runs (LG-3 anomalies, AU-8 confirmer usage) and their acknowledgement by an auditor.

A run is computed, stored with its thresholds and a SHA-256 of its canonical findings, and recorded in
the ledger in one transaction. A branch manager's run covers only their branch. Acknowledging is the
auditor's signature that the findings were looked at; it is recorded and cannot be repeated.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.anomalies import AnomalyThresholds, analyse
from app.audit.confirmer_usage import ConfirmerThresholds, confirmer_usage
from app.audit.ledger import Actor, canonical_json, record
from app.audit.models import AuditReportRun
from app.authz.policy import authorize, may
from app.authz.principal import Principal
from app.clock import business_date_of
from app.context import AppContext
from app.crypto.sealed_text import open_text, seal_text
from app.errors import BusinessDateNotBegun, InvalidState, NotFound, ValidationFailed

REPORT_KINDS = ("anomalies", "confirmer_usage")
# A run over more than a year is a bulk export, not an analysis an auditor acknowledges.
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class ReportRun:
    run: AuditReportRun
    thresholds: dict[str, Any]
    findings: list[dict[str, Any]]


def _flag_count(kind: str, findings: list[dict[str, Any]]) -> int:
    if kind == "confirmer_usage":
        return sum(len(entry["flags"]) for entry in findings)
    return len(findings)


def _scoped(findings: list[dict[str, Any]], branch_code: str | None) -> list[dict[str, Any]]:
    """A branch's report: the findings that concern it, each cut down to that branch's part, so a
    branch manager never learns which staff of other branches looked up the same person."""
    if branch_code is None:
        return findings
    scoped = []
    for finding in findings:
        if branch_code not in finding.get("branch_codes", []):
            continue
        details = finding.get("details", {})
        by_branch = details.get("operators_by_branch")
        if by_branch is not None:
            finding = {
                **finding,
                "branch_codes": [branch_code],
                "count": details.get("inquiries_by_branch", {}).get(branch_code, 0),
                "details": {"operators": by_branch.get(branch_code, [])},
            }
        scoped.append(finding)
    return scoped


def check_period(period_from: date, period_to: date, *, today: date) -> None:
    if period_to < period_from:
        raise ValidationFailed("'to' is before 'from'")
    if period_from > today:
        # A stored run an auditor must acknowledge, about days with nothing in them yet.
        raise BusinessDateNotBegun(f"{period_from.isoformat()} has not begun yet")
    if (period_to - period_from).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(f"A report covers at most {MAX_PERIOD_DAYS} days")


async def compute(
    session: AsyncSession, *, ctx: AppContext, kind: str, period_from: date, period_to: date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if kind == "anomalies":
        anomaly_thresholds = AnomalyThresholds.from_settings(ctx.settings)
        findings = await analyse(
            session,
            calendar=ctx.calendar,
            thresholds=anomaly_thresholds,
            period_from=period_from,
            period_to=period_to,
        )
        return anomaly_thresholds.as_dict(), findings
    confirmer_thresholds = ConfirmerThresholds.from_settings(ctx.settings)
    entries = await confirmer_usage(
        session,
        calendar=ctx.calendar,
        thresholds=confirmer_thresholds,
        period_from=period_from,
        period_to=period_to,
    )
    return confirmer_thresholds.as_dict(), entries


async def run_report(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    kind: str,
    period_from: date,
    period_to: date,
    branch_code: str | None = None,
    schedule_key: str | None = None,
) -> ReportRun:
    """Compute, store and record one run. A scheduled run already stored (another worker) is returned."""
    check_period(period_from, period_to, today=business_date_of(ctx.clock.now()))
    if schedule_key is not None:
        existing = await session.scalar(
            select(AuditReportRun).where(AuditReportRun.schedule_key == schedule_key)
        )
        if existing is not None:
            return loaded(existing)
    thresholds, findings = await compute(
        session, ctx=ctx, kind=kind, period_from=period_from, period_to=period_to
    )
    findings = _scoped(findings, branch_code)
    content = canonical_json(
        {
            "kind": kind,
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "branch_code": branch_code,
            "thresholds": thresholds,
            "findings": findings,
        }
    )
    run = AuditReportRun(
        id=str(uuid.uuid4()),
        kind=kind,
        period_from=period_from,
        period_to=period_to,
        branch_code=branch_code,
        trigger="scheduled" if schedule_key else "on_demand",
        schedule_key=schedule_key,
        generated_at=ctx.clock.now(),
        generated_by=actor.id or "unknown",
        thresholds=canonical_json(thresholds),
        findings=canonical_json(findings),
        findings_count=_flag_count(kind, findings),
        content_sha256=hashlib.sha256(content.encode()).hexdigest(),
    )
    session.add(run)
    record(
        session,
        actor=actor,
        action="audit.report_generated",
        object_type="audit_report",
        object_id=run.id,
        details={
            "kind": kind,
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "branch_code": branch_code,
            "trigger": run.trigger,
            "findings": run.findings_count,
            "content_sha256": run.content_sha256,
        },
    )
    try:
        await session.commit()
    except IntegrityError:
        # Another worker stored the same scheduled run first.
        await session.rollback()
        existing = await session.scalar(
            select(AuditReportRun).where(AuditReportRun.schedule_key == schedule_key)
        )
        if existing is None:
            raise
        return loaded(existing)
    return ReportRun(run, thresholds, findings)


def loaded(run: AuditReportRun) -> ReportRun:
    return ReportRun(run, dict(orjson.loads(run.thresholds)), list(orjson.loads(run.findings)))


def acknowledgement_note_of(ctx: AppContext, run: AuditReportRun) -> str | None:
    """The acknowledging auditor's words on the findings."""
    return open_text(ctx.keyring, run, "acknowledgement_note")


def report_scope_for(principal: Principal, branch_code: str | None) -> str | None:
    """Auditors see the whole bank (or one branch when asked); a branch manager only their own branch."""
    if may(principal, "audit.read"):
        return branch_code
    if branch_code is None:
        raise ValidationFailed("branch_code is required for a branch manager")
    authorize(principal, "audit.anomalies.read", branch_code=branch_code)
    return branch_code


async def load_report(session: AsyncSession, *, principal: Principal, run_id: str) -> ReportRun:
    run = await session.get(AuditReportRun, run_id)
    if run is None:
        raise NotFound("No such report run")
    if not may(principal, "audit.read") and (
        run.branch_code is None or not may(principal, "audit.anomalies.read", branch_code=run.branch_code)
    ):
        raise NotFound("No such report run")
    return loaded(run)


async def list_reports(
    session: AsyncSession, *, kind: str | None, acknowledged: bool | None, limit: int, cursor: str | None
) -> tuple[list[AuditReportRun], str | None]:
    """Newest first; the cursor is the id of the last run shown (keyset), so runs acknowledged or made
    between two pages neither drop out of the walk nor come round twice."""
    query = (
        select(AuditReportRun)
        .order_by(AuditReportRun.generated_at.desc(), AuditReportRun.id)
        .limit(limit + 1)
    )
    if kind is not None:
        query = query.where(AuditReportRun.kind == kind)
    if acknowledged is not None:
        query = query.where(
            AuditReportRun.acknowledged_at.is_not(None)
            if acknowledged
            else AuditReportRun.acknowledged_at.is_(None)
        )
    if cursor:
        anchor = await session.get(AuditReportRun, cursor)
        if anchor is None:
            raise ValidationFailed("The cursor is not valid")
        query = query.where(
            or_(
                AuditReportRun.generated_at < anchor.generated_at,
                and_(AuditReportRun.generated_at == anchor.generated_at, AuditReportRun.id > anchor.id),
            )
        )
    rows = list((await session.scalars(query)).all())
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


async def acknowledge(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, run_id: str, note: str | None
) -> AuditReportRun:
    """An auditor signs off a run (LG-3: reports must be acknowledged by an auditor)."""
    authorize(principal, "audit.report.acknowledge")
    run = await session.get(AuditReportRun, run_id, with_for_update=True)
    if run is None:
        raise NotFound("No such report run")
    if run.acknowledged_at is not None:
        raise InvalidState(f"The report was already acknowledged by {run.acknowledged_by}")
    run.acknowledged_by = principal.id
    run.acknowledged_at = ctx.clock.now()
    seal_text(ctx.keyring, run, "acknowledgement_note", note)
    record(
        session,
        actor=principal.actor(),
        action="audit.report_acknowledged",
        object_type="audit_report",
        object_id=run.id,
        details={"kind": run.kind, "findings": run.findings_count, "content_sha256": run.content_sha256},
    )
    await session.commit()
    return run
