"""HQ executing a branch's request (HQ-1, HQ-2): the rules the inquiry service asks when ``hq_request_id``
is set, including who releases HQ's answer.

Kept apart from app/hq/service.py because the inquiry service calls in here while the HQ service
calls the inquiry service's purpose and subject rules; this module depends on neither.

The executing inquiry must carry exactly what the branch asked for (purpose, customer status,
subject, consent document): HQ re-enters the request from ``GET /hq-requests`` and the gateway
compares keyed hashes, so HQ cannot widen a branch's request into another inquiry.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.models import Branch
from app.authz.policy import authorize
from app.authz.principal import Principal
from app.context import AppContext
from app.errors import (
    Forbidden,
    HqRequestAlreadyExecuted,
    HqRequestMismatch,
    InvalidState,
    Suspended,
    ValidationFailed,
)
from app.governance.switches import active_suspension
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry


def request_content_hash(
    ctx: AppContext,
    *,
    purpose: str,
    customer_status: str,
    subject: dict[str, Any],
    consent_type: str,
    consent_reference: str,
    consent_obtained_on: date,
) -> str:
    """Keyed hash of a request's content (the normalised subject, never the raw input)."""
    content = orjson.dumps(
        {
            "purpose": purpose,
            "customer_status": customer_status,
            "subject": subject,
            "document": [consent_type, consent_reference, consent_obtained_on.isoformat()],
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()
    return ctx.keyring.blind_index(content, domain="hq_request")


async def lock_request(session: AsyncSession, *, principal: Principal, request_id: str) -> HqRequest | None:
    """The request an HQ operator is about to execute, row-locked (None if there is none).

    The lock makes a concurrent second execution wait until the first has committed. The caller looks up
    its Idempotency-Key again after it: a retry of the very execution that held the lock then gets that
    execution's inquiry instead of being refused (and recorded) as a second execution.
    """
    branch_code = principal.terminal_branch_code
    authorize(principal, "hq_request.execute", branch_code=branch_code)
    branch = await session.get(Branch, branch_code) if branch_code else None
    if branch is None or not branch.is_hq:
        raise Forbidden("Branch requests are executed at an HQ terminal")
    return await session.get(HqRequest, request_id, with_for_update=True)


async def claim_pending_request(
    session: AsyncSession, *, principal: Principal, request_id: str, content_hash: str
) -> HqRequest:
    """Lock the pending request an HQ operator executes; refuse a second execution or other content."""
    # The row lock makes a concurrent second execution wait and then see ``executed``; the unique
    # constraint on inquiries.hq_request_id stops it even if the lock were bypassed.
    request = await lock_request(session, principal=principal, request_id=request_id)
    if request is None:
        raise ValidationFailed("No HQ request with this id exists")
    if request.status == "executed":
        await _record_refusal(
            session, principal=principal, request=request, code="HQ_REQUEST_ALREADY_EXECUTED"
        )
        raise HqRequestAlreadyExecuted(
            f"The request was executed by inquiry {request.inquiry_id}", audited=True
        )
    if request.status != "pending":
        raise InvalidState(f"The request is {request.status}")
    if await active_suspension(
        session, user_id=request.operator_id, terminal_id=request.terminal_id, branch_code=request.branch_code
    ):
        # An emergency switch on the requesting branch (or its operator or terminal) stops HQ too (IR-1).
        await _record_refusal(session, principal=principal, request=request, code="SUSPENDED")
        raise Suspended("The requesting branch is suspended by an emergency control", audited=True)
    if not secrets.compare_digest(request.content_hash, content_hash):
        await _record_refusal(session, principal=principal, request=request, code="HQ_REQUEST_MISMATCH")
        raise HqRequestMismatch(
            "Purpose, customer status, subject and consent document must be exactly those of the request",
            audited=True,
        )
    return request


async def _record_refusal(
    session: AsyncSession, *, principal: Principal, request: HqRequest, code: str
) -> None:
    """A second execution or an altered one is worth an auditor's look: recorded before refusing."""
    record(
        session,
        actor=principal.actor(),
        action="hq_request.execution_refused",
        object_type="hq_request",
        object_id=request.id,
        outcome="denied",
        details={"code": code},
    )
    await session.commit()


def mark_executed(
    session: AsyncSession, *, ctx: AppContext, request: HqRequest, inquiry: Inquiry, actor: Actor
) -> None:
    now = ctx.clock.now()
    request.status = "executed"
    request.inquiry_id = inquiry.id
    request.executed_by = inquiry.operator_id
    request.executed_at = now
    request.executed_business_date = inquiry.business_date
    request.updated_at = now
    record(
        session,
        actor=actor,
        action="hq_request.executed",
        object_type="hq_request",
        object_id=request.id,
        details={
            "inquiry_id": inquiry.id,
            "inquiry_number": inquiry.number,
            "requesting_branch": request.branch_code,
            "return_option": request.return_option,
        },
    )


async def requesting_branch(session: AsyncSession, *, inquiry: Inquiry) -> str | None:
    """The branch whose request an HQ inquiry executes, or None for any other inquiry."""
    if inquiry.hq_request_id is None:
        return None
    return await session.scalar(select(HqRequest.branch_code).where(HqRequest.id == inquiry.hq_request_id))


async def operators_of(session: AsyncSession, inquiry: Inquiry) -> tuple[str, ...]:
    """Everyone who counts as the inquiry's operator, and so never approves, releases, cancels for or
    confirms it (SD-1): whoever entered it and, for an HQ inquiry run on a branch's request, the branch
    operator who asked for it — whatever the request's return option, and also when that person holds a
    confirming role at HQ as well."""
    if inquiry.hq_request_id is None:
        return (inquiry.operator_id,)
    asked = select(HqRequest.operator_id).where(HqRequest.id == inquiry.hq_request_id)
    requester = await session.scalar(asked)
    return tuple(dict.fromkeys(p for p in (inquiry.operator_id, requester) if p is not None))


async def requesting_operator(session: AsyncSession, *, inquiry_id: str) -> str | None:
    """Who at the branch asked for the HQ inquiry ``inquiry_id``, or None for a branch's own inquiry or
    HQ's own. As HQ's operator who ran it, they may not confirm it at their branch (SD-1: operator ≠
    confirmer on the same HQ request)."""
    return await session.scalar(
        select(HqRequest.operator_id)
        .join(Inquiry, Inquiry.hq_request_id == HqRequest.id)
        .where(Inquiry.id == inquiry_id)
    )


async def releasing_request(session: AsyncSession, *, ctx: AppContext, inquiry: Inquiry) -> HqRequest | None:
    """The branch request whose own confirmer releases HQ's answer (HQ-2, method B at the requesting
    branch), or None when the answer follows the executing branch's methods.

    That is the case when the request's return option was ``none`` (no list goes back to the branch)
    and the requesting branch uses method B: the answer is held until a confirmer of that branch —
    not HQ's, not the requesting operator — re-authenticates and checks it against the consent document.
    """
    if inquiry.hq_request_id is None:
        return None
    request = await session.get(HqRequest, inquiry.hq_request_id)
    if request is None or request.return_option != "none":
        return None
    return request if "B" in ctx.policy.methods_for(request.branch_code) else None
