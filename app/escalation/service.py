"""Reading and handling escalations.

An escalation is raised by the capability that finds the problem (a release with a document mismatch,
the overdue sweep, a list line checked as not matching, a center refusing a cancellation, HQ's day not
balancing) and written there in the same transaction. Here it is read — by the branch managers of its
branch, by HQ compliance and by auditors — and acknowledged: once, with what was done, by a branch
manager of its branch or HQ compliance who is not one of the people it concerns. Until then it is open
and stays on the oversight page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.policy import authorize, ensure_not_concerned, may
from app.authz.principal import Principal
from app.context import AppContext
from app.errors import InvalidState, NotFound
from app.escalation.models import Escalation
from app.escalation.schemas import EscalationState
from app.inquiry.models import Inquiry
from app.pagination import keyset_page


def _visible(principal: Principal, query: Select[Any]) -> Select[Any]:
    """Only the caller's branches, unless they read escalations bank-wide (HQ compliance)."""
    if may(principal, "escalation.read", branch_code="*"):
        return query
    return query.where(Escalation.branch_code.in_(sorted(principal.branch_codes)))


def _in_state(query: Select[Any], state: EscalationState) -> Select[Any]:
    if state == "open":
        return query.where(Escalation.acknowledged_at.is_(None))
    if state == "acknowledged":
        return query.where(Escalation.acknowledged_at.is_not(None))
    return query


async def open_escalations(
    session: AsyncSession, *, principal: Principal, limit: int = 200
) -> list[Escalation]:
    """Open escalations the caller may read, newest first (the oversight page)."""
    authorize(principal, "escalation.read")
    query = (
        _in_state(_visible(principal, select(Escalation)), "open")
        # Raised together (one overdue sweep) reads best by branch, then kind; the id only breaks ties.
        .order_by(Escalation.created_at.desc(), Escalation.branch_code, Escalation.kind, Escalation.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def recently_acknowledged(
    session: AsyncSession, *, principal: Principal, limit: int = 20
) -> list[Escalation]:
    """The last escalations the caller may read that were closed, latest first: who handled what, and
    how (the oversight page's history)."""
    authorize(principal, "escalation.read")
    query = (
        _in_state(_visible(principal, select(Escalation)), "acknowledged")
        .order_by(Escalation.acknowledged_at.desc(), Escalation.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def list_escalations(
    session: AsyncSession,
    *,
    principal: Principal,
    state: EscalationState,
    branch_code: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Escalation], str | None]:
    """Escalations the caller may read, oldest first (a work queue), cursor-paginated."""
    authorize(principal, "escalation.read")
    query = _in_state(_visible(principal, select(Escalation)), state)
    if branch_code is not None:
        query = query.where(Escalation.branch_code == branch_code)
    return await keyset_page(
        session, query, at=Escalation.created_at, row_id=Escalation.id, limit=limit, cursor=cursor
    )


async def _concerned(session: AsyncSession, escalation: Escalation) -> dict[str, str | None]:
    """Who an escalation is about or was raised by, as far as its object names them."""
    if escalation.object_type != "inquiry":
        return {}
    inquiry = await session.get(Inquiry, escalation.object_id)
    if inquiry is None:
        return {}
    concerned: dict[str, str | None] = {"entered the inquiry it is about": inquiry.operator_id}
    if escalation.kind == "document_mismatch":
        concerned["raised it on releasing the response"] = inquiry.released_by
    return concerned


async def acknowledge(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, escalation_id: str, note: str
) -> Escalation:
    """Close an escalation with what was done. Once only: a second acknowledgement is refused and the
    first stands (409 INVALID_STATE)."""
    escalation = await session.get(Escalation, escalation_id, with_for_update=True)
    # Another branch's escalation does not exist for the caller (as for inquiries and lists).
    if escalation is None or not may(principal, "escalation.read", branch_code=escalation.branch_code):
        raise NotFound("No such escalation")
    authorize(principal, "escalation.acknowledge", branch_code=escalation.branch_code)
    ensure_not_concerned(principal.id, concerned=await _concerned(session, escalation))
    if escalation.acknowledged_at is not None:
        raise InvalidState(f"The escalation was already acknowledged by {escalation.acknowledged_by}")
    escalation.acknowledged_by = principal.id
    escalation.acknowledged_at = ctx.clock.now()
    escalation.acknowledgement_note = note
    record(
        session,
        actor=principal.actor(),
        action="escalation.acknowledged",
        object_type="escalation",
        object_id=escalation.id,
        # The note is free text and may name people: it stays in the escalation, not in the ledger.
        details={
            "kind": escalation.kind,
            "branch_code": escalation.branch_code,
            "object_type": escalation.object_type,
            "object_id": escalation.object_id,
        },
    )
    await session.commit()
    return escalation
