"""Inquiry endpoints (api.md "Inquiries"). Thin: parse, call one service function, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.authz.policy import authorize
from app.authz.principal import Principal
from app.clock import BusinessDate
from app.context import AppContext
from app.crypto.sealed_text import open_text
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.idempotency import IdempotencyKey
from app.inquiry import approvals, service
from app.inquiry.deps import (
    InquiryConfirmer,
    InquiryCreator,
    InquiryOperator,
    InquiryReader,
    InquiryReleaser,
    RegisterReader,
    ResponseReader,
    TraceReader,
)
from app.inquiry.models import Inquiry, InquiryCorrection, InquiryFlag
from app.inquiry.schemas import (
    ApprovalNumberOut,
    ApprovalNumberRequest,
    ApprovalOut,
    ApprovalRegisterOut,
    CancelRequest,
    CenterOut,
    ConsentDocumentOut,
    CorrectedInquiryOut,
    CorrectionOut,
    CorrectRequest,
    InquiryCreate,
    InquiryOut,
    InquiryPage,
    InquiryStatus,
    InquiryUpdate,
    ReleaseOut,
    ReleaseRequest,
    ResponseOut,
    ResponseStateOut,
    SubjectOut,
    SubmitRequest,
    TraceEvent,
    TraceOut,
)
from app.inquiry.sealing import open_subject

router = APIRouter(prefix="/inquiries", tags=["inquiries"])
register_router = APIRouter(prefix="/approval-numbers", tags=["inquiries"])


def inquiry_out(
    ctx: AppContext, principal: Principal, inquiry: Inquiry, *, releasing_branch: str | None = None
) -> InquiryOut:
    shows_subject = service.may_see_subject(principal, inquiry, releasing_branch=releasing_branch)
    subject = SubjectOut(**open_subject(ctx, inquiry)) if shows_subject else None
    return InquiryOut(
        id=inquiry.id,
        number=inquiry.number,
        branch_code=inquiry.branch_code,
        terminal_id=inquiry.terminal_id,
        operator_id=inquiry.operator_id,
        purpose=inquiry.purpose,
        customer_status=inquiry.customer_status,
        subject=subject,
        consent_document=ConsentDocumentOut(
            type=inquiry.consent_type,
            reference=inquiry.consent_reference,
            obtained_on=inquiry.consent_obtained_on,
        ),
        status=inquiry.status,
        flags=list(inquiry.flags),
        approval=ApprovalOut(
            method=inquiry.approval_method,
            confirmer_id=inquiry.approval_confirmer_id,
            approved_at=inquiry.approved_at,
        )
        if inquiry.approval_method and inquiry.approval_confirmer_id and inquiry.approved_at
        else None,
        center=CenterOut(
            inquiry_id=inquiry.center_inquiry_id,
            sent_at=inquiry.sent_at,
            result_code=inquiry.center_result_code,
        )
        # Also for an inquiry never sent that ended in center_error: its result code says why.
        if inquiry.sent_at or inquiry.center_inquiry_id or inquiry.center_result_code
        else None,
        response=ResponseStateOut(
            state=inquiry.response_state,
            released_by=inquiry.released_by,
            released_at=inquiry.released_at,
            document_check=inquiry.document_check,
            # Staff's words about the person: for those who may see whom the inquiry is about.
            release_note=open_text(ctx.keyring, inquiry, "release_note") if shows_subject else None,
        ),
        hq_request_id=inquiry.hq_request_id,
        created_at=inquiry.created_at,
        business_date=inquiry.business_date,
        expires_at=inquiry.expires_at,
    )


def correction_out(correction: InquiryCorrection) -> CorrectionOut:
    return CorrectionOut(
        corrected_at=correction.corrected_at,
        corrected_by=correction.corrected_by,
        confirmer_id=correction.confirmer_id,
        approval_method=correction.approval_method,
        at_center=correction.at_center,
        changes=correction.changes,
    )


async def _raw_json(request: Request) -> Any:
    return await request.json()


@router.post(
    "",
    summary="Enter an inquiry (sent at once with A1 approval or when method A is off)",
    status_code=status.HTTP_201_CREATED,
    response_model=InquiryOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_inquiry(
    request: Request,
    body: InquiryCreate,
    principal: InquiryCreator,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> InquiryOut:
    created = await service.create_inquiry(
        session,
        ctx=ctx,
        principal=principal,
        body=body,
        raw_body=await _raw_json(request),
        idempotency_key=idempotency_key,
    )
    inquiry = created.inquiry
    if inquiry.status == "queued" and not created.replayed:
        inquiry = await service.wait_for_center(ctx, inquiry.id) or inquiry
    return inquiry_out(ctx, principal, inquiry)


@router.get(
    "",
    summary="Inquiries of your branches",
    response_model=InquiryPage,
    responses=problem_responses(401, 403),
)
async def list_inquiries(
    principal: InquiryReader,
    session: DbSession,
    ctx: Context,
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
    business_date: BusinessDate | None = None,
    status_filter: Annotated[InquiryStatus | None, Query(alias="status")] = None,
    operator_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=120)] = None,
) -> InquiryPage:
    rows, next_cursor = await service.list_inquiries(
        session,
        principal=principal,
        branch_code=branch_code,
        business_date=business_date,
        status=status_filter,
        operator_id=operator_id,
        limit=limit,
        cursor=cursor,
    )
    await service.record_subject_views(session, principal=principal, inquiries=rows)
    return InquiryPage(items=[inquiry_out(ctx, principal, row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{inquiry_id}",
    summary="One inquiry (metadata; never response content)",
    response_model=InquiryOut,
    responses=problem_responses(401, 403, 404),
)
async def get_inquiry(
    inquiry_id: str, principal: InquiryReader, session: DbSession, ctx: Context
) -> InquiryOut:
    inquiry, duty = await service.get_inquiry_and_duty(
        session, ctx=ctx, principal=principal, inquiry_id=inquiry_id
    )
    correction = (
        await service.correction_of(session, inquiry.id) if InquiryFlag.CORRECTED in inquiry.flags else None
    )
    # HQ's answer released at the requesting branch: that branch's confirmer sees whom it is about.
    await service.record_subject_views(
        session, principal=principal, inquiries=[inquiry], releasing_branch=duty.branch_code
    )
    shown = inquiry_out(ctx, principal, inquiry, releasing_branch=duty.branch_code)
    if correction is not None:
        shown.correction = correction_out(correction)
    return shown


@router.patch(
    "/{inquiry_id}",
    summary="Change a draft awaiting approval (voids its approval numbers)",
    response_model=InquiryOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_draft(
    request: Request,
    inquiry_id: str,
    body: InquiryUpdate,
    principal: InquiryCreator,
    session: DbSession,
    ctx: Context,
) -> InquiryOut:
    inquiry = await service.update_draft(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        body=body,
        raw_body=await _raw_json(request),
    )
    return inquiry_out(ctx, principal, inquiry)


@router.post(
    "/{inquiry_id}/approval-numbers",
    summary="Issue a one-time approval number for this draft, its cancellation or one correction "
    "(confirmer ≠ operator)",
    status_code=status.HTTP_201_CREATED,
    response_model=ApprovalNumberOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def issue_approval_number(
    inquiry_id: str,
    principal: InquiryConfirmer,
    session: DbSession,
    ctx: Context,
    body: ApprovalNumberRequest | None = None,
) -> ApprovalNumberOut:
    number, expires_at = await service.issue_approval_number(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        correction=body.correction if body is not None else None,
    )
    return ApprovalNumberOut(approval_number=number, expires_at=expires_at)


@router.post(
    "/{inquiry_id}/submit",
    summary="Send an approved draft to the center",
    response_model=InquiryOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def submit(
    request: Request,
    inquiry_id: str,
    body: SubmitRequest,
    principal: InquiryOperator,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> InquiryOut:
    inquiry = await service.submit(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        approval=body.approval,
        raw_body=await _raw_json(request),
        idempotency_key=idempotency_key,
    )
    if inquiry.status == "queued":
        inquiry = await service.wait_for_center(ctx, inquiry.id) or inquiry
    return inquiry_out(ctx, principal, inquiry)


@router.get(
    "/{inquiry_id}/response",
    summary="Read a released response (every read is logged)",
    response_model=ResponseOut,
    responses=problem_responses(401, 403, 404, 410, 423),
)
async def read_response(
    inquiry_id: str, principal: ResponseReader, session: DbSession, ctx: Context
) -> Response:
    inquiry, response, content = await service.read_response(
        session, ctx=ctx, principal=principal, inquiry_id=inquiry_id
    )
    out = ResponseOut(
        inquiry_id=inquiry.id,
        center_inquiry_id=response.center_inquiry_id,
        received_at=response.received_at,
        record=content,
    )
    return JSONResponse(out.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.post(
    "/{inquiry_id}/release",
    summary="Release a held response after re-authentication (method B)",
    response_model=ReleaseOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def release(
    inquiry_id: str, body: ReleaseRequest, principal: InquiryReleaser, session: DbSession, ctx: Context
) -> ReleaseOut:
    released = await service.release(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        password=body.password,
        document_check=body.document_check,
        note=body.note,
        totp=body.totp,
    )
    next_steps = (
        "照合不一致として記録しました。支店の個人信用情報管理者と本部コンプライアンス部門に通知済みです。"
        "回答情報は照会作業者には表示されません。"
        if body.document_check == "mismatch"
        else None
    )
    return ReleaseOut(
        inquiry_id=released.inquiry.id,
        center_inquiry_id=released.response.center_inquiry_id,
        received_at=released.response.received_at,
        record=released.record,
        document_check=body.document_check,
        flags=list(released.inquiry.flags),
        next_steps=next_steps,
    )


@router.post(
    "/{inquiry_id}/cancel",
    summary="Cancel (two-person control; cancelled at the center too)",
    response_model=InquiryOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def cancel(
    request: Request,
    inquiry_id: str,
    body: CancelRequest,
    principal: InquiryOperator,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> InquiryOut:
    inquiry = await service.cancel(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        reason=body.reason,
        approval=body.approval,
        raw_body=await _raw_json(request),
        idempotency_key=idempotency_key,
    )
    return inquiry_out(ctx, principal, inquiry)


@router.post(
    "/{inquiry_id}/correct",
    summary="Correct the purpose or consent document of a sent inquiry's record (two-person control; "
    "a corrected purpose is corrected at the center too)",
    response_model=CorrectedInquiryOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def correct(
    request: Request,
    inquiry_id: str,
    body: CorrectRequest,
    principal: InquiryOperator,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> CorrectedInquiryOut:
    inquiry, correction = await service.correct(
        session,
        ctx=ctx,
        principal=principal,
        inquiry_id=inquiry_id,
        reason=body.reason,
        fields=body.corrections,
        approval=body.approval,
        raw_body=await _raw_json(request),
        idempotency_key=idempotency_key,
    )
    return CorrectedInquiryOut(
        **inquiry_out(ctx, principal, inquiry).model_dump(exclude={"correction"}),
        correction=correction_out(correction),
    )


@router.get(
    "/{inquiry_id}/trace",
    summary="Every event of this inquiry in order (LG-5)",
    response_model=TraceOut,
    responses=problem_responses(401, 403, 404),
)
async def trace(inquiry_id: str, principal: TraceReader, session: DbSession) -> TraceOut:
    inquiry, events = await service.trace(session, principal=principal, inquiry_id=inquiry_id)
    return TraceOut(
        inquiry_id=inquiry.id,
        number=inquiry.number,
        events=[
            TraceEvent(
                seq=t.event.seq,
                at=t.event.at,
                actor_id=t.event.actor_id,
                terminal_id=t.event.terminal_id,
                action=t.event.action,
                object_type=t.event.object_type,
                object_id=t.event.object_id,
                via=t.via,
                outcome=t.event.outcome,
                details=service.event_details(t.event),
            )
            for t in events
        ],
    )


@register_router.get(
    "/register",
    summary="The approval-number register's daily balance (method A2)",
    response_model=ApprovalRegisterOut,
    responses=problem_responses(401, 403),
)
async def approval_register(
    principal: RegisterReader,
    session: DbSession,
    ctx: Context,
    branch_code: Annotated[str, Query(max_length=8)],
    business_date: BusinessDate,
) -> ApprovalRegisterOut:
    authorize(principal, "approval_register.read", branch_code=branch_code)
    counts = await approvals.register_balance(
        session, branch_code=branch_code, business_date=business_date, now=ctx.clock.now()
    )
    return ApprovalRegisterOut(
        branch_code=branch_code,
        business_date=business_date,
        **counts,
        balanced=counts["issued"]
        == counts["used"] + counts["voided"] + counts["expired"] + counts["outstanding"],
    )
