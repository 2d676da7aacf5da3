from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.authz.schemas import Page
from app.context import AppContext
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.escalation import service
from app.escalation.deps import EscalationHandler, EscalationReader
from app.escalation.models import Escalation
from app.escalation.schemas import AcknowledgeEscalationIn, EscalationOut, EscalationState
from app.pagination import PageCursor, PageLimit

router = APIRouter(prefix="/escalations", tags=["escalations"])


def _out(ctx: AppContext, escalation: Escalation) -> EscalationOut:
    return EscalationOut(
        id=escalation.id,
        kind=escalation.kind,
        branch_code=escalation.branch_code,
        object_type=escalation.object_type,
        object_id=escalation.object_id,
        recipients=escalation.recipients,
        created_at=escalation.created_at,
        note=service.note_of(ctx, escalation),
        raised_by=escalation.raised_by,
        acknowledged_by=escalation.acknowledged_by,
        acknowledged_at=escalation.acknowledged_at,
        acknowledgement_note=service.acknowledgement_note_of(ctx, escalation),
    )


@router.get(
    "",
    summary="Escalations of the caller's branches (all for HQ compliance), oldest first; open by default",
    response_model=Page[EscalationOut],
    responses=problem_responses(401, 403, 422),
)
async def escalations(
    principal: EscalationReader,
    session: DbSession,
    ctx: Context,
    state: EscalationState = "open",
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[EscalationOut]:
    rows, next_cursor = await service.list_escalations(
        session, principal=principal, state=state, branch_code=branch_code, limit=limit, cursor=cursor
    )
    return Page[EscalationOut](items=[_out(ctx, row) for row in rows], next_cursor=next_cursor)


@router.post(
    "/{escalation_id}/acknowledge",
    summary="Close an escalation with what was done (once; not by the people it concerns)",
    response_model=EscalationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def acknowledge(
    escalation_id: str,
    body: AcknowledgeEscalationIn,
    principal: EscalationHandler,
    session: DbSession,
    ctx: Context,
) -> EscalationOut:
    escalation = await service.acknowledge(
        session, ctx=ctx, principal=principal, escalation_id=escalation_id, note=body.note
    )
    return _out(ctx, escalation)
