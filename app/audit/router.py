"""Audit endpoints (LG-2). Reading the ledger is itself recorded before anything is returned."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.audit import forensics, reports, service
from app.audit.data_ledger import build_data_ledger
from app.audit.deps import AnomalyReader, DataLedgerReader, ForensicsReader, ReportAcknowledger
from app.audit.ledger import record
from app.audit.schemas import (
    AccessHolderOut,
    AccessHoldersOut,
    AcknowledgeRequest,
    AnomaliesOut,
    AnomalyFinding,
    CheckpointOut,
    CheckpointPage,
    ConfirmerUsageEntry,
    ConfirmerUsageOut,
    DataLedgerOut,
    ReportPage,
    ReportRunOut,
    SubjectAccessEntry,
    SubjectAccessOut,
    SubjectAccessQuery,
    SubjectInquiryOut,
    VerifyOut,
)
from app.authz.deps import AuditReader
from app.clock import BusinessDate, Instant, IsoDate
from app.context import AppContext
from app.crypto.keyring import PSEUDONYM_PATTERN, public_key_pem
from app.db import BIGINT_MAX
from app.deps import Context, DbSession
from app.errors import ValidationFailed, problem_responses
from app.inquiry.subject import OptionalFreeText
from app.models_registry import metadata

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "/events",
    summary="Stream ledger events as NDJSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **problem_responses(401, 403, 422)},
)
async def events(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    after_seq: Annotated[int, Query(ge=0, le=BIGINT_MAX)] = 0,
    since: Instant | None = None,
    until: Instant | None = None,
    # The filters are recorded in the ledger (audit.events_read), which can never give a value back up:
    # one holding an Individual Number is refused as one (PL-4), as free text in a body is.
    actor_id: Annotated[OptionalFreeText, Query(max_length=80)] = None,
    action: Annotated[OptionalFreeText, Query(max_length=80)] = None,
    object_id: Annotated[OptionalFreeText, Query(max_length=80)] = None,
    limit: Annotated[int | None, Query(ge=1, le=BIGINT_MAX)] = None,
) -> StreamingResponse:
    where = service.EventFilter(
        after_seq=after_seq,
        since=since,
        until=until,
        actor_id=actor_id,
        action=action,
        object_id=object_id,
        limit=limit,
    )
    record(
        session,
        actor=principal.actor(),
        action="audit.events_read",
        object_type="ledger",
        details=where.as_details(),
    )
    await session.commit()
    return StreamingResponse(service.stream_events(ctx.db, where), media_type="application/x-ndjson")


@router.get(
    "/verify",
    summary="Verify the whole chain and its checkpoints",
    response_model=VerifyOut,
    responses=problem_responses(401, 403),
)
async def verify(principal: AuditReader, session: DbSession, ctx: Context) -> VerifyOut:
    report = await service.verify_ledger(ctx.db, ctx.keyring, service.checkpoint_rule(ctx.settings))
    record(
        session,
        actor=principal.actor(),
        action="audit.verified",
        object_type="ledger",
        outcome="success" if report.ok else "failure",
        details={"checked": report.checked, "first_bad_seq": report.first_bad_seq, "reason": report.reason},
    )
    await session.commit()
    return VerifyOut.model_validate(report.as_dict())


@router.get(
    "/checkpoints",
    summary="Signed checkpoints, with the public keys to check them",
    response_model=CheckpointPage,
    responses=problem_responses(401, 403, 422),
)
async def checkpoints(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    # 18 digits: every one fits a BIGINT (19 may not, and the driver would raise on it).
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> CheckpointPage:
    after = int(cursor) if cursor else 0
    rows, next_cursor = await service.checkpoint_page(session, after_seq=after, limit=limit)
    record(
        session,
        actor=principal.actor(),
        action="audit.checkpoints_read",
        object_type="ledger",
        details={"after_seq": after, "count": len(rows)},
    )
    await session.commit()
    items = [
        CheckpointOut(seq=r.seq, hash=r.hash, at=r.at, key_id=r.key_id, signature=r.signature) for r in rows
    ]
    return CheckpointPage(
        items=items,
        next_cursor=next_cursor,
        public_keys={kid: public_key_pem(key) for kid, key in ctx.keyring.checkpoint_public_keys().items()},
    )


# -- the auditor's surface: forensics (AC-6), anomalies (LG-3), confirmer usage (AU-8), DG-1 ---------


def _subject_access_out(report: forensics.SubjectAccessReport) -> SubjectAccessOut:
    return SubjectAccessOut(
        subject_pseudonym=report.subject_pseudonym,
        inquiries=[
            SubjectInquiryOut(
                id=i.id,
                number=i.number,
                branch_code=i.branch_code,
                operator_id=i.operator_id,
                terminal_id=i.terminal_id,
                purpose=i.purpose,
                status=i.status,
                created_at=i.created_at,
            )
            for i in report.inquiries
        ],
        users=report.users,
        terminals=report.terminals,
        accesses=[SubjectAccessEntry(**asdict(a)) for a in report.accesses],
    )


@router.get(
    "/subject-access",
    summary="Every user and terminal that inquired about, viewed, printed or downloaded a person (AC-6)",
    response_model=SubjectAccessOut,
    responses=problem_responses(401, 403, 422),
)
async def subject_access(
    principal: ForensicsReader,
    session: DbSession,
    ctx: Context,
    name_kana: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    birth_date: IsoDate | None = None,
    subject_pseudonym: Annotated[str | None, Query(pattern=PSEUDONYM_PATTERN)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> SubjectAccessOut:
    if subject_pseudonym is not None:
        if name_kana is not None or birth_date is not None:
            raise ValidationFailed(
                "Name the person either by name_kana and birth_date or by subject_pseudonym"
            )
        report = await forensics.subject_access_by_pseudonym(
            session, actor=principal.actor(), pseudonym=subject_pseudonym, since=since, until=until
        )
    elif name_kana is not None and birth_date is not None:
        report = await forensics.subject_access(
            session,
            ctx=ctx,
            actor=principal.actor(),
            name_kana=name_kana,
            birth_date=birth_date,
            since=since,
            until=until,
        )
    else:
        raise ValidationFailed("Name the person by name_kana and birth_date, or by subject_pseudonym")
    return _subject_access_out(report)


@router.post(
    "/subject-access",
    summary="As GET /audit/subject-access, with the person in the body (keeps the name out of URLs and logs)",
    response_model=SubjectAccessOut,
    responses=problem_responses(401, 403, 422),
)
async def subject_access_by_body(
    body: SubjectAccessQuery, principal: ForensicsReader, session: DbSession, ctx: Context
) -> SubjectAccessOut:
    report = await forensics.subject_access(
        session, ctx=ctx, actor=principal.actor(), name_kana=body.name_kana, birth_date=body.birth_date
    )
    return _subject_access_out(report)


@router.get(
    "/access-holders",
    summary="Users whose roles let them reach a branch's data at time T, from the role history (AC-6)",
    response_model=AccessHoldersOut,
    responses=problem_responses(401, 403, 422),
)
async def access_holders(
    principal: ForensicsReader,
    session: DbSession,
    branch_code: Annotated[str, Query(min_length=1, max_length=8)],
    at: Instant,
) -> AccessHoldersOut:
    holders, services = await forensics.access_holders(
        session, actor=principal.actor(), branch_code=branch_code, at=at
    )
    return AccessHoldersOut(
        branch_code=branch_code,
        at=at,
        users=[AccessHolderOut(**asdict(h)) for h in holders],
        service_accounts=services,
    )


def _run_out(ctx: AppContext, run: reports.ReportRun) -> ReportRunOut:
    row = run.run
    return ReportRunOut(
        id=row.id,
        kind=row.kind,
        period_from=row.period_from,
        period_to=row.period_to,
        branch_code=row.branch_code,
        trigger=row.trigger,
        generated_at=row.generated_at,
        generated_by=row.generated_by,
        thresholds=run.thresholds,
        findings_count=row.findings_count,
        content_sha256=row.content_sha256,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        acknowledgement_note=reports.acknowledgement_note_of(ctx, row),
    )


@router.get(
    "/anomalies",
    summary="Run and store the anomaly analysis: night and holiday activity, outliers, NO_TRADE_INFO (LG-3)",
    response_model=AnomaliesOut,
    responses=problem_responses(401, 403, 422),
)
async def anomalies(
    principal: AnomalyReader,
    session: DbSession,
    ctx: Context,
    period_from: Annotated[BusinessDate, Query(alias="from")],
    period_to: Annotated[BusinessDate, Query(alias="to")],
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
) -> AnomaliesOut:
    scope = reports.report_scope_for(principal, branch_code)
    run = await reports.run_report(
        session,
        ctx=ctx,
        actor=principal.actor(),
        kind="anomalies",
        period_from=period_from,
        period_to=period_to,
        branch_code=scope,
    )
    return AnomaliesOut(run=_run_out(ctx, run), findings=[AnomalyFinding(**f) for f in run.findings])


@router.get(
    "/confirmer-usage",
    summary="Run and store the confirmer-usage report (AU-8)",
    response_model=ConfirmerUsageOut,
    responses=problem_responses(401, 403, 422),
)
async def confirmer_usage(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    period_from: Annotated[BusinessDate, Query(alias="from")],
    period_to: Annotated[BusinessDate, Query(alias="to")],
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
) -> ConfirmerUsageOut:
    run = await reports.run_report(
        session,
        ctx=ctx,
        actor=principal.actor(),
        kind="confirmer_usage",
        period_from=period_from,
        period_to=period_to,
        branch_code=branch_code,
    )
    return ConfirmerUsageOut(
        run=_run_out(ctx, run), confirmers=[ConfirmerUsageEntry(**entry) for entry in run.findings]
    )


@router.get(
    "/reports",
    summary="Stored report runs, newest first (filter by kind and acknowledgement)",
    response_model=ReportPage,
    responses=problem_responses(401, 403, 422),
)
async def report_runs(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    kind: Annotated[str | None, Query(pattern="^(anomalies|confirmer_usage)$")] = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,  # the id of the last run shown
) -> ReportPage:
    rows, next_cursor = await reports.list_reports(
        session, kind=kind, acknowledged=acknowledged, limit=limit, cursor=cursor
    )
    # The list names each run's period, scope and findings count: reading it is recorded like one run.
    record(
        session,
        actor=principal.actor(),
        action="audit.reports_listed",
        object_type="audit_report",
        details={
            "kind": kind,
            "acknowledged": acknowledged,
            "cursor": cursor,
            "run_ids": [row.id for row in rows],
        },
    )
    await session.commit()
    return ReportPage(items=[_run_out(ctx, reports.loaded(row)) for row in rows], next_cursor=next_cursor)


@router.get(
    "/reports/{run_id}",
    summary="One stored report run with its findings",
    response_model=AnomaliesOut | ConfirmerUsageOut,
    responses=problem_responses(401, 403, 404),
)
async def report_run(
    run_id: str, principal: AnomalyReader, session: DbSession, ctx: Context
) -> AnomaliesOut | ConfirmerUsageOut:
    run = await reports.load_report(session, principal=principal, run_id=run_id)
    record(
        session,
        actor=principal.actor(),
        action="audit.report_read",
        object_type="audit_report",
        object_id=run.run.id,
    )
    await session.commit()
    if run.run.kind == "confirmer_usage":
        return ConfirmerUsageOut(
            run=_run_out(ctx, run), confirmers=[ConfirmerUsageEntry(**e) for e in run.findings]
        )
    return AnomaliesOut(run=_run_out(ctx, run), findings=[AnomalyFinding(**f) for f in run.findings])


@router.post(
    "/reports/{run_id}/acknowledge",
    summary="An auditor acknowledges a report run (LG-3)",
    response_model=ReportRunOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def acknowledge_report(
    run_id: str,
    body: AcknowledgeRequest,
    principal: ReportAcknowledger,
    session: DbSession,
    ctx: Context,
) -> ReportRunOut:
    row = await reports.acknowledge(session, ctx=ctx, principal=principal, run_id=run_id, note=body.note)
    return _run_out(ctx, reports.loaded(row))


admin_router = APIRouter(prefix="/admin", tags=["audit"])


@admin_router.get(
    "/data-ledger",
    summary="The data ledger (個人情報管理台帳), generated from the schema and configuration (DG-1)",
    response_model=DataLedgerOut,
    responses=problem_responses(401, 403),
)
async def data_ledger(principal: DataLedgerReader, session: DbSession, ctx: Context) -> DataLedgerOut:
    ledger = build_data_ledger(metadata, ctx.settings)
    record(
        session,
        actor=principal.actor(),
        action="data_ledger.read",
        object_type="data_ledger",
        details={"datasets": len(ledger["datasets"]), "gaps": len(ledger["personal_data_gaps"])},
    )
    await session.commit()
    return DataLedgerOut.model_validate(ledger)
