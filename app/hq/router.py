"""HQ endpoints (api.md "HQ requests and reconciliation"). Thin: parse, call one service function, shape.

HQ executes a request with ``POST /inquiries`` and ``hq_request_id`` (app/inquiry/router.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status

from app.authz.deps import require
from app.authz.principal import Principal
from app.clock import BusinessDate
from app.context import AppContext
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.hq import service
from app.hq.models import HqDailySignOff, HqRequest
from app.hq.schemas import (
    BranchRequestsExecuted,
    HqReconciliationOut,
    HqRequestCreate,
    HqRequestCreated,
    HqRequestOut,
    HqRequestPage,
    HqSignOffOut,
)
from app.idempotency import IdempotencyKey
from app.inquiry.schemas import ApprovalOut, ConsentDocumentOut, SubjectOut

RequestCreator = Annotated[Principal, Depends(require("hq_request.create"))]
RequestReader = Annotated[Principal, Depends(require("hq_request.read"))]
ReconciliationReader = Annotated[Principal, Depends(require("hq_reconciliation.read"))]
SignOffConfirmer = Annotated[Principal, Depends(require("hq_reconciliation.sign_off"))]

router = APIRouter(prefix="/hq-requests", tags=["hq"])
reconciliation_router = APIRouter(prefix="/reconciliation/hq", tags=["hq"])


def request_out(ctx: AppContext, principal: Principal, request: HqRequest) -> HqRequestOut:
    subject = (
        SubjectOut(**service.open_request_subject(ctx, request))
        if service.may_see_subject(principal, request)
        else None
    )
    return HqRequestOut(
        id=request.id,
        branch_code=request.branch_code,
        operator_id=request.operator_id,
        terminal_id=request.terminal_id,
        purpose=request.purpose,
        customer_status=request.customer_status,
        subject=subject,
        consent_document=ConsentDocumentOut(
            type=request.consent_type,
            reference=request.consent_reference,
            obtained_on=request.consent_obtained_on,
        ),
        return_option=request.return_option,
        status=request.status,
        approval=ApprovalOut(
            method=request.approval_method,
            confirmer_id=request.approval_confirmer_id,
            approved_at=request.approved_at,
        )
        if request.approval_method and request.approval_confirmer_id and request.approved_at
        else None,
        inquiry_id=request.inquiry_id,
        executed_by=request.executed_by,
        executed_at=request.executed_at,
        created_at=request.created_at,
        business_date=request.business_date,
    )


def sign_off_out(signed: HqDailySignOff) -> HqSignOffOut:
    return HqSignOffOut(
        business_date=signed.business_date,
        signed_by=signed.signed_by,
        signed_at=signed.signed_at,
        hq_executed=signed.hq_executed,
        branch_requests_executed=signed.branch_requests_executed,
        own_initiative=signed.own_initiative,
    )


async def _raw_json(request: Request) -> Any:
    return await request.json()


@router.post(
    "",
    summary="Ask HQ to run an inquiry for this branch (照会依頼)",
    status_code=status.HTTP_201_CREATED,
    response_model=HqRequestCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_request(
    request: Request,
    body: HqRequestCreate,
    principal: RequestCreator,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> HqRequestCreated:
    created = await service.create_request(
        session,
        ctx=ctx,
        principal=principal,
        body=body,
        raw_body=await _raw_json(request),
        idempotency_key=idempotency_key,
    )
    return HqRequestCreated(id=created.request.id, status=created.request.status)


@router.get(
    "",
    summary="HQ requests: every branch's for HQ, the branch's own for a branch",
    response_model=HqRequestPage,
    responses=problem_responses(401, 403, 422),
)
async def list_requests(
    principal: RequestReader,
    session: DbSession,
    ctx: Context,
    status_filter: Annotated[Literal["pending", "executed"] | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=120)] = None,
) -> HqRequestPage:
    rows, next_cursor = await service.list_requests(
        session, principal=principal, status=status_filter, limit=limit, cursor=cursor
    )
    return HqRequestPage(items=[request_out(ctx, principal, row) for row in rows], next_cursor=next_cursor)


@reconciliation_router.get(
    "",
    summary="HQ's daily balance: executed = branch requests executed + own initiative (HQ-3)",
    response_model=HqReconciliationOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def reconciliation(
    principal: ReconciliationReader, session: DbSession, ctx: Context, business_date: BusinessDate
) -> HqReconciliationOut:
    balance, signed = await service.reconciliation(
        session, ctx=ctx, principal=principal, business_date=business_date
    )
    return HqReconciliationOut(
        business_date=balance.business_date,
        hq_executed=balance.hq_executed,
        branch_requests_executed=balance.branch_requests_executed,
        by_branch=[
            BranchRequestsExecuted(branch_code=code, requests_executed=count)
            for code, count in balance.by_branch.items()
        ],
        own_initiative=balance.own_initiative,
        balanced=balance.balanced,
        sign_off=sign_off_out(signed) if signed else None,
    )


@reconciliation_router.post(
    "/{business_date}/sign-off",
    summary="Sign off HQ's balanced day (an HQ confirmer who ran none of its inquiries)",
    response_model=HqSignOffOut,
    responses={
        **problem_responses(401, 403, 404, 422),
        409: {
            "description": "HQ_COUNT_MISMATCH (not balanced) or INVALID_STATE (already signed off)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    },
)
async def sign_off(
    business_date: BusinessDate, principal: SignOffConfirmer, session: DbSession, ctx: Context
) -> HqSignOffOut:
    signed = await service.sign_off(session, ctx=ctx, principal=principal, business_date=business_date)
    return sign_off_out(signed)
