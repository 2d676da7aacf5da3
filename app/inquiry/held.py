"""Inquiries an emergency switch holds before they reach the center (IR-1): listed for the security
officers, and withdrawn by one of them before they are ever sent.

A switch thrown on an operator suspected of misuse keeps their queued inquiries from the center, but
lifting it would send them as they were approved — and the operator, suspended, cannot cancel them.
Withdrawing is the safe direction (nothing more reaches the center), so one security officer in a
privileged session does it, with a reason; lifting the switch itself still takes two.

The withdrawal and the sender decide on the outbox row: the row is deleted only while it is held and
no sender has it claimed, in the same transaction that cancels the inquiry. A sender claims a row with
a conditional update, so one of the two wins and the other finds nothing; an inquiry being sent at that
moment is refused (409) and can be cancelled at the center once it is answered.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.policy import authorize
from app.authz.principal import Principal
from app.context import AppContext
from app.crypto.sealed_text import seal_text
from app.errors import InvalidState
from app.inquiry.models import Inquiry, InquiryFlag, OutboxMessage
from app.inquiry.outbox import HELD_BY_SWITCH, switch_holding
from app.inquiry.service import load_inquiry
from app.pagination import keyset_page


def _held_rows() -> tuple[ColumnElement[bool], ...]:
    """An inquiry's outbox row that a switch keeps back (``outbox._held_by_switch`` marks it so)."""
    return (
        OutboxMessage.kind == "inquire",
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.last_error == HELD_BY_SWITCH,
    )


async def held_inquiries(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[Inquiry], str | None]:
    """The inquiries a switch holds now, oldest first: who entered them where, never about whom."""
    authorize(principal, "emergency.read")
    query = (
        select(Inquiry)
        .join(OutboxMessage, OutboxMessage.inquiry_id == Inquiry.id)
        .where(Inquiry.status == "queued", *_held_rows())
    )
    return await keyset_page(
        session, query, at=Inquiry.created_at, row_id=Inquiry.id, limit=limit, cursor=cursor
    )


async def withdraw(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, inquiry_id: str, reason: str
) -> Inquiry:
    """Cancel a held inquiry before it is sent: it never reaches the center and is on no daily list
    (it was never made there), and its approval stays used."""
    authorize(principal, "inquiry.withdraw")
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    if inquiry.status != "queued":
        raise InvalidState(f"Only a queued inquiry can be withdrawn; the inquiry is {inquiry.status}")
    if inquiry.hq_request_id is not None:
        # HQ's day balances its executed inquiries against the branches' executed requests (HQ-3): one
        # withdrawn would leave its request executed for an inquiry that never went out.
        raise InvalidState("An HQ inquiry for a branch request is not withdrawn; cancel it once answered")
    suspension = await switch_holding(session, inquiry)
    if suspension is None:
        raise InvalidState("No switch holds the inquiry any more: it goes out as approved; cancel it then")
    now = ctx.clock.now()
    taken = await session.execute(
        delete(OutboxMessage)
        .where(
            OutboxMessage.inquiry_id == inquiry.id,
            *_held_rows(),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            # No call was made with it: a call whose answer was lost may have reached the center, and
            # only the retry with its idempotency key can tell (then the inquiry is cancelled there).
            OutboxMessage.attempts == 0,
        )
        .returning(OutboxMessage.id)
    )
    outbox_id = taken.scalar_one_or_none()
    if outbox_id is None:
        await session.rollback()
        raise InvalidState(
            "The inquiry is not held by a switch, or it is being sent or may have reached the center: "
            "cancel it once answered"
        )
    inquiry.status = "cancelled"
    inquiry.cancelled_at = now
    inquiry.cancelled_by = principal.id
    inquiry.flags = sorted({*inquiry.flags, InquiryFlag.WITHDRAWN_UNDER_SWITCH})
    inquiry.updated_at = now
    seal_text(ctx.keyring, inquiry, "cancel_reason", reason)
    record(
        session,
        actor=principal.actor(),
        action="inquiry.withdrawn",
        object_type="inquiry",
        object_id=inquiry.id,
        # The reason is staff's words and may name the subject: it stays sealed on the inquiry.
        details={
            "branch_code": inquiry.branch_code,
            "operator_id": inquiry.operator_id,
            "outbox_id": outbox_id,
            "emergency_suspension_id": suspension.id,
        },
    )
    await session.commit()
    ctx.deliveries.settled(inquiry.id)
    return inquiry
