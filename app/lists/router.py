"""Daily-list endpoints (api.md "Daily lists"). Thin: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.deps import require
from app.authz.models import Branch
from app.authz.policy import authorize, may
from app.authz.principal import Principal
from app.clock import BusinessDate
from app.context import AppContext
from app.crypto.sealed_text import open_text
from app.deps import Context, DbSession
from app.errors import Forbidden, problem_responses
from app.lists import service
from app.lists.formats import ListLineView, ListView, render_csv, render_pdf
from app.lists.models import DailyList
from app.lists.schemas import (
    CheckRequest,
    ConfirmRequest,
    DailyListOut,
    DailyListPage,
    DailyListSummary,
    GapsOut,
    GenerateRequest,
    GenerateResponse,
    ListLineOut,
    TotalsOut,
)

router = APIRouter(prefix="/daily-lists", tags=["daily lists"])

ListReader = Annotated[Principal, Depends(require("lists.read"))]
ListGenerator = Annotated[Principal, Depends(require("lists.generate"))]
ListConfirmer = Annotated[Principal, Depends(require("inquiry.confirm"))]


def summary(ctx: AppContext, daily: DailyList) -> DailyListSummary:
    return DailyListSummary(
        id=daily.id,
        branch_code=daily.branch_code,
        business_date=daily.business_date,
        kind=daily.kind,
        sequence=daily.sequence,
        version=daily.version,
        supersedes=daily.supersedes,
        supplement_reason=daily.supplement_reason,
        generated_at=daily.generated_at,
        content_sha256=daily.content_sha256,
        no_inquiries=daily.no_inquiries,
        totals=TotalsOut(inquiries=daily.inquiries_total, responses_delivered=daily.responses_delivered),
        state=service.effective_state(ctx, daily),
        due_at=daily.due_at,
        confirmed_by=daily.confirmed_by,
        confirmed_at=daily.confirmed_at,
        late=daily.late,
        late_reason=daily.late_reason,
    )


async def lines_out(
    session: AsyncSession, ctx: AppContext, principal: Principal, daily: DailyList, content: dict[str, Any]
) -> list[ListLineOut]:
    """A list's lines with their checks; names only for those allowed them (the API and the panel)."""
    show_names = service.may_read_subjects(
        principal, daily, confirmed_from=await service.confirming_branch(session, daily)
    )
    by_no = {line.line_no: line for line in await service.lines_of(session, daily.id)}
    out = []
    for line in content["lines"]:
        check = by_no[line["line_no"]]
        subject = line.get("subject") if show_names else None
        out.append(
            ListLineOut(
                **{k: v for k, v in line.items() if k != "subject"},
                subject=subject,
                check=check.check,
                checked_by=check.checked_by,
                checked_at=check.checked_at,
                check_note=open_text(ctx.keyring, check, "note"),
            )
        )
    return out


def file_view(ctx: AppContext, daily: DailyList, branch_name: str, lines: list[ListLineOut]) -> ListView:
    """What the CSV and the PDF show (the API's files and the panel's are the same)."""
    center_refusals = sum(1 for line in lines if line.center_refusal is not None)
    return ListView(
        id=daily.id,
        branch_code=daily.branch_code,
        branch_name=branch_name,
        business_date=daily.business_date,
        kind=daily.kind,
        sequence=daily.sequence,
        version=daily.version,
        supersedes=daily.supersedes,
        supplement_reason=daily.supplement_reason,
        generated_at=daily.generated_at,
        content_sha256=daily.content_sha256,
        no_inquiries=daily.no_inquiries,
        lines=tuple(
            ListLineView(
                line_no=line.line_no,
                line_type=line.line_type,
                at=line.at,
                operator_id=line.operator_id,
                terminal_id=line.terminal_id,
                purpose=line.purpose,
                purpose_label=ctx.policy.purposes[line.purpose].label_ja
                if line.purpose in ctx.policy.purposes
                else line.purpose,
                name_kana=line.subject.name_kana if line.subject else None,
                birth_date=line.subject.birth_date if line.subject else None,
                document_label=ctx.policy.documents.get(
                    line.consent_document.type, line.consent_document.type
                ),
                document_reference=line.consent_document.reference,
                check=line.check,
                checked_by=line.checked_by,
                checked_at=line.checked_at,
                response_delivered=line.response_delivered,
                center_refused=line.center_refusal is not None,
            )
            for line in lines
        ),
        inquiries_total=daily.inquiries_total,
        responses_delivered=daily.responses_delivered,
        state=service.effective_state(ctx, daily),
        due_at=daily.due_at,
        confirmed_by=daily.confirmed_by,
        confirmed_at=daily.confirmed_at,
        late=daily.late,
        late_reason=daily.late_reason,
        responses_in_hand=daily.responses_in_hand,
        attested_no_inquiries=daily.attested_no_inquiries,
        center_refusals=center_refusals,
    )


@router.post(
    "/generate",
    summary="Generate the lists of a day (idempotent; supplementary versions on changes)",
    response_model=GenerateResponse,
    responses=problem_responses(401, 403, 404, 422),
)
async def generate(body: GenerateRequest, principal: ListGenerator, ctx: Context) -> GenerateResponse:
    results = await service.generate(
        ctx, day=body.business_date, actor=principal.actor(), branch_code=body.branch_code
    )
    return GenerateResponse(
        items=[summary(ctx, r.daily) for r in results], created=sum(1 for r in results if r.created)
    )


@router.get(
    "", summary="Lists of your branches", response_model=DailyListPage, responses=problem_responses(401, 403)
)
async def list_lists(
    principal: ListReader,
    session: DbSession,
    ctx: Context,
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
    date_from: Annotated[BusinessDate | None, Query(alias="from")] = None,
    date_to: Annotated[BusinessDate | None, Query(alias="to")] = None,
    kind: Literal["subject", "count"] | None = None,
    state: Literal["pending", "confirmed", "overdue", "superseded"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=36)] = None,
) -> DailyListPage:
    rows, next_cursor = await service.search_page(
        session,
        ctx,
        principal=principal,
        branch_code=branch_code,
        date_from=date_from,
        date_to=date_to,
        kind=kind,
        state=state,
        limit=limit,
        cursor=cursor,
    )
    return DailyListPage(items=[summary(ctx, row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/gaps",
    summary="Business days without a list and sequence gaps (DL-1)",
    response_model=GapsOut,
    responses=problem_responses(401, 403, 422),
)
async def gaps(
    reader: ListReader,
    session: DbSession,
    ctx: Context,
    date_from: Annotated[BusinessDate, Query(alias="from")],
    date_to: Annotated[BusinessDate, Query(alias="to")],
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
) -> GapsOut:
    authorize(reader, "lists.read", branch_code=branch_code)
    if branch_code is None and not may(reader, "lists.read", branch_code="*"):
        raise Forbidden("Name one of your branches (branch_code) or ask HQ for the bank-wide view")
    found = await service.gaps(session, ctx, date_from=date_from, date_to=date_to, branch_code=branch_code)
    return GapsOut.model_validate(found)


@router.get(
    "/{list_id}",
    summary="One list (?format=csv or ?format=pdf for files)",
    response_model=DailyListOut,
    responses={200: {"content": {"text/csv": {}, "application/pdf": {}}}, **problem_responses(401, 403, 404)},
)
async def get_list(
    list_id: str,
    principal: ListReader,
    session: DbSession,
    ctx: Context,
    format: Literal["json", "csv", "pdf"] = "json",
) -> Any:
    daily = await service.load_list(session, list_id)
    service.ensure_can_read(principal, daily)
    content = service.open_content(ctx, daily)
    lines = await lines_out(session, ctx, principal, daily, content)
    await service.record_access(
        session,
        principal=principal,
        daily=daily,
        how={"json": "viewed", "csv": "downloaded", "pdf": "printed"}[format],
    )
    if format == "json":
        base = summary(ctx, daily).model_dump()
        base["totals"]["center_refusals"] = int(content["totals"].get("center_refusals", 0))
        return DailyListOut(
            **base,
            lines=lines,
            responses_in_hand=daily.responses_in_hand,
            attested_no_inquiries=daily.attested_no_inquiries,
        )
    branch = await session.get(Branch, daily.branch_code)
    view = file_view(ctx, daily, branch.name if branch else daily.branch_code, lines)
    stem = f"{daily.kind}-list-{daily.branch_code}-{daily.business_date:%Y%m%d}-v{daily.version}"
    if format == "csv":
        return Response(
            render_csv(view),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    return Response(
        render_pdf(view),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{stem}.pdf"'},
    )


@router.post(
    "/{list_id}/lines/{line_no}/check",
    summary="Check one line (confirmer ≠ that line's operator)",
    response_model=ListLineOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def check_line(
    list_id: str,
    # Bounded so a huge number is a 422, not an integer overflow in the database driver.
    line_no: Annotated[int, Path(ge=1, le=10_000_000)],
    body: CheckRequest,
    principal: ListConfirmer,
    session: DbSession,
    ctx: Context,
) -> ListLineOut:
    await service.check_line(
        session,
        ctx,
        principal=principal,
        list_id=list_id,
        line_no=line_no,
        result=body.result,
        note=body.note,
    )
    daily = await service.load_list(session, list_id)
    content = service.open_content(ctx, daily)
    lines = await lines_out(session, ctx, principal, daily, content)
    return next(line for line in lines if line.line_no == line_no)


@router.post(
    "/{list_id}/confirm",
    summary="Confirm the list (counts, attestation, late reason)",
    response_model=DailyListSummary,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def confirm(
    list_id: str, body: ConfirmRequest, principal: ListConfirmer, session: DbSession, ctx: Context
) -> DailyListSummary:
    daily = await service.confirm(
        session,
        ctx,
        principal=principal,
        list_id=list_id,
        responses_in_hand=body.responses_in_hand,
        attest_no_inquiries=body.attest_no_inquiries,
        late_reason=body.late_reason,
    )
    return summary(ctx, daily)
