"""Center reconciliation endpoints (api.md "HQ requests and reconciliation"; RC-1, RC-2). Thin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.authz.deps import require
from app.authz.principal import Principal
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.reconciliation import service
from app.reconciliation.schemas import (
    AlertOut,
    ApprovalRegisterOut,
    CenterReconciliationOut,
    CenterReconciliationRequest,
    DayCountOut,
    FindingOut,
    RunPage,
    RunSummaryOut,
    TerminalUsageOut,
)

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])

Reconciler = Annotated[Principal, Depends(require("reconciliation.center.run"))]
RunReader = Annotated[Principal, Depends(require("reconciliation.center.read"))]


def run_out(view: service.RunView) -> CenterReconciliationOut:
    run = view.run

    def findings(kind: str) -> list[FindingOut]:
        return [FindingOut.model_validate(finding, from_attributes=True) for finding in view.findings[kind]]

    return CenterReconciliationOut(
        id=run.id,
        state=run.state,
        date_from=run.period_from,
        date_to=run.period_to,
        source=run.source,
        source_sha256=run.source_sha256,
        requested_by=run.requested_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        failure=run.failure,
        center_entries=run.center_entries,
        gateway_entries=run.gateway_entries,
        clean=run.clean,
        finding_counts=run.finding_counts,
        findings_limit=service.FINDINGS_SHOWN,
        unmatched_center=findings("unmatched_center"),
        unmatched_gateway=findings("unmatched_gateway"),
        undual_cancellations=findings("undual_cancellation"),
        mismatched=findings("mismatched"),
        by_terminal=[TerminalUsageOut.model_validate(row) for row in run.by_terminal],
        by_day=[DayCountOut.model_validate(row) for row in run.by_day],
        approval_registers=[ApprovalRegisterOut.model_validate(row) for row in run.approval_registers],
        alerts=[AlertOut.model_validate(alert, from_attributes=True) for alert in view.alerts],
    )


@router.post(
    "/center",
    summary="Reconcile the center's inquiry record of a period against the gateway (RC-1, RC-2)",
    response_model=CenterReconciliationOut,
    responses=problem_responses(401, 403, 422, 503),
)
async def reconcile_center(
    body: CenterReconciliationRequest, principal: Reconciler, ctx: Context
) -> CenterReconciliationOut:
    run = await service.reconcile_center(
        ctx, actor=principal.actor(), date_from=body.date_from, date_to=body.date_to
    )
    return run_out(await service.run_view(ctx, run_id=run.id))


@router.get(
    "/center",
    summary="Stored center reconciliation runs, newest first",
    response_model=RunPage,
    responses=problem_responses(401, 403, 422),
)
async def list_center_runs(
    principal: RunReader,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
) -> RunPage:
    runs, next_cursor = await service.list_runs(session, actor=principal.actor(), limit=limit, cursor=cursor)
    return RunPage(
        items=[
            RunSummaryOut(
                id=run.id,
                state=run.state,
                date_from=run.period_from,
                date_to=run.period_to,
                source=run.source,
                started_at=run.started_at,
                clean=run.clean,
                center_entries=run.center_entries,
                gateway_entries=run.gateway_entries,
            )
            for run in runs
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/center/{run_id}",
    summary="One stored center reconciliation run with its findings and alerts",
    response_model=CenterReconciliationOut,
    responses=problem_responses(401, 403, 404),
)
async def get_center_run(
    run_id: str, principal: RunReader, ctx: Context, session: DbSession
) -> CenterReconciliationOut:
    return run_out(await service.read_run(ctx, session, actor=principal.actor(), run_id=run_id))
