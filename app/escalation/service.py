"""Reading and handling escalations.

An escalation is raised by the capability that finds the problem (a release with a document mismatch,
the overdue sweep, a list line checked as not matching, a center refusing a cancellation, HQ's day not
balancing) and written there in the same transaction. Here it is read — by the branch managers of its
branch, by HQ compliance and by auditors — and acknowledged: once, with what was done, by someone in a
role its recipients call for (a branch manager of its branch, HQ compliance) who is not one of the
people it concerns. Until then it is open and stays on the oversight page.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.policy import authorize, ensure_not_concerned, may, may_handle_escalation
from app.authz.principal import Principal
from app.context import AppContext
from app.crypto.sealed_text import open_text, seal_text
from app.errors import Forbidden, InvalidState, NotFound, OutOfScope, SeparationOfDutiesViolation
from app.escalation.models import Escalation
from app.escalation.schemas import EscalationState
from app.hq.models import HqRequest
from app.hq.service import compute_balance
from app.inquiry.models import Inquiry, InquiryCorrection
from app.pagination import keyset_page


def note_of(ctx: AppContext, escalation: Escalation) -> str | None:
    """What the escalation says about itself: the system's note (a line, the day's figures, a center
    code) or, for one a confirmer raised, their remark."""
    return escalation.note if escalation.note is not None else open_text(ctx.keyring, escalation, "remark")


def acknowledgement_note_of(ctx: AppContext, escalation: Escalation) -> str | None:
    """What was done about it, as the handler wrote it."""
    return open_text(ctx.keyring, escalation, "acknowledgement_note")


def _visible(principal: Principal, query: Select[Any]) -> Select[Any]:
    """Only the branches where the caller holds a role that reads escalations (not every branch of every
    role: a manager at one branch who confirms at another reads the first's), unless they read them
    bank-wide (HQ compliance, auditors)."""
    if may(principal, "escalation.read", branch_code="*"):
        return query
    readable = sorted(b for b in principal.branch_codes if may(principal, "escalation.read", branch_code=b))
    return query.where(Escalation.branch_code.in_(readable))


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


async def count_open(session: AsyncSession, *, principal: Principal) -> int:
    """How many open escalations the caller may read (the dashboard's tile)."""
    authorize(principal, "escalation.read")
    query = _in_state(_visible(principal, select(func.count()).select_from(Escalation)), "open")
    return int(await session.scalar(query) or 0)


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


async def _concerned(session: AsyncSession, escalation: Escalation) -> list[tuple[str, str | None]]:
    """Who an escalation is about or was raised by: the raiser and whom they named, and the people its
    object names (read now, so a correction made since counts too)."""
    concerned: list[tuple[str, str | None]] = [("raised it", escalation.raised_by)]
    concerned += [("are named in it", person) for person in escalation.concerns or []]
    if escalation.object_type == "inquiry":
        concerned += await _inquiry_people(session, escalation)
    elif escalation.object_type == "hq_reconciliation":
        balance = await compute_balance(session, business_date=date.fromisoformat(escalation.object_id))
        concerned += [("ran an HQ inquiry of the day it is about", person) for person in balance.operators]
    return concerned


async def _inquiry_people(session: AsyncSession, escalation: Escalation) -> list[tuple[str, str | None]]:
    inquiry = await session.get(Inquiry, escalation.object_id)
    if inquiry is None:
        return []
    people: list[tuple[str, str | None]] = [
        ("entered the inquiry it is about", inquiry.operator_id),
        ("approved the inquiry it is about", inquiry.approval_confirmer_id),
    ]
    if inquiry.hq_request_id is not None:
        request = await session.get(HqRequest, inquiry.hq_request_id)
        people.append(("asked HQ for the inquiry it is about", request.operator_id if request else None))
    if escalation.kind == "document_mismatch":
        # Also for mismatches raised before the escalation named its raiser.
        people.append(("raised it on releasing the response", inquiry.released_by))
    elif escalation.kind == "center_refused_cancellation":
        people += [
            ("asked for the cancellation", inquiry.cancelled_by),
            ("approved the cancellation", inquiry.cancel_confirmer_id),
        ]
    elif escalation.kind == "center_refused_correction":
        corrections = await session.scalars(
            select(InquiryCorrection).where(InquiryCorrection.inquiry_id == inquiry.id)
        )
        for correction in corrections:
            people += [
                ("corrected the inquiry", correction.corrected_by),
                ("approved the correction", correction.confirmer_id),
            ]
    return people


async def _ensure_may_handle(session: AsyncSession, principal: Principal, escalation: Escalation) -> None:
    """403 unless ``principal`` holds the role its recipients call for, at its branch, and is none of the
    people it concerns."""
    if not may_handle_escalation(
        principal, recipients=escalation.recipients, branch_code=escalation.branch_code
    ):
        raise Forbidden("Your roles do not allow handling this escalation")
    ensure_not_concerned(principal.id, concerned=await _concerned(session, escalation))


async def handling(
    session: AsyncSession, *, principal: Principal, escalations: list[Escalation]
) -> dict[str, str]:
    """For the oversight page, each open escalation the caller may not close and why: ``role`` (it is
    for someone else) or ``concerned`` (it is about them). The page offers the form for the others."""
    reasons: dict[str, str] = {}
    for escalation in escalations:
        try:
            await _ensure_may_handle(session, principal, escalation)
        except SeparationOfDutiesViolation:
            reasons[escalation.id] = "concerned"
        except Forbidden:
            reasons[escalation.id] = "role"
    return reasons


async def acknowledge(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, escalation_id: str, note: str
) -> Escalation:
    """Close an escalation with what was done. Once only: a second acknowledgement is refused and the
    first stands (409 INVALID_STATE)."""
    escalation = await session.get(Escalation, escalation_id, with_for_update=True)
    # Another branch's escalation does not exist for the caller (as for inquiries and lists).
    if escalation is None:
        raise NotFound("No such escalation")
    if not may(principal, "escalation.read", branch_code=escalation.branch_code):
        raise OutOfScope("No such escalation")
    await _ensure_may_handle(session, principal, escalation)
    if escalation.acknowledged_at is not None:
        # Who closed it is on the escalation for those who may read it, not in an error message.
        raise InvalidState("The escalation was already acknowledged")
    escalation.acknowledged_by = principal.id
    escalation.acknowledged_at = ctx.clock.now()
    seal_text(ctx.keyring, escalation, "acknowledgement_note", note)
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
