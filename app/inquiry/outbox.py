"""The durable outbox to the center (ER-2, ER-3; design.md "The center link and the outbox").

Submitting writes ``queued`` and an outbox row in one transaction. When a sender runs in this process,
that row is written already claimed for one lease and the submitting request delivers it itself at once
(:meth:`OutboxSender.deliver_claimed`), which saves the sender's due query and claim transaction; if the
process dies first, the lease runs out and any sender retries the row with the same key. Otherwise the
sender claims a due row for a short lease (one transaction), calls the center with the row's idempotency
key — the inquiry id, which never changes — and stores the sealed response, the new state and
``delivered_at`` in one more transaction. A crash at any point leaves a row that is retried later with
the same key, and the center answers a repeated key with the first answer: a retry never makes a second
center inquiry.
No database transaction is open while the center is being called.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from app.audit.ledger import SYSTEM_ACTOR, record
from app.center.interface import (
    CENTER_REASON_MAX_LENGTH,
    CenterCancelRequest,
    CenterCorrectRequest,
    CenterInquiryRequest,
    CenterRefused,
    CenterUnavailable,
)
from app.context import AppContext
from app.crypto.envelope import Sealed, seal
from app.crypto.sealed_text import open_text, seal_text
from app.escalation.models import Escalation
from app.governance.models import EmergencySuspension
from app.governance.switches import active_suspension
from app.hq import execution as hq_execution
from app.inquiry.models import Inquiry, OutboxMessage, SealedResponse
from app.inquiry.sealing import open_subject, response_aad

log = logging.getLogger("shokai.outbox")

MAX_BACKOFF = timedelta(minutes=5)
# The result code of an inquiry the center's contract cannot carry (a stored field past the center's
# limits, from before the entry check): never sent, so no center answer (no CENTER_ prefix, no sent_at),
# and settled instead of retried, since every retry would fail the same way.
NOT_SENDABLE = "GATEWAY_NOT_SENDABLE"
# A cancellation or correction the center refused leaves the two records apart (CC-1): escalated.
FOLLOW_UP_ESCALATIONS = {"cancel": "center_refused_cancellation", "correct": "center_refused_correction"}


def enqueue(
    session: AsyncSession,
    *,
    ctx: AppContext,
    inquiry: Inquiry,
    kind: str,
    payload: dict[str, str] | None = None,
    claimed: bool = False,
) -> OutboxMessage:
    """Queue a message; ``claimed`` writes it claimed for one lease by this process (counted as attempt 1)."""
    key = inquiry.id if kind == "inquire" else f"{kind}:{inquiry.id}"
    now = ctx.clock.now()
    message = OutboxMessage(
        inquiry_id=inquiry.id,
        kind=kind,
        idempotency_key=key,
        attempts=1 if claimed else 0,
        next_attempt_at=now,
        created_at=now,
        claimed_until=now + _claim_lease(ctx) if claimed else None,
    )
    seal_text(ctx.keyring, message, "payload", json.dumps(payload) if payload else None, key=key)
    session.add(message)
    return message


def _backoff(attempts: int) -> timedelta:
    seconds = min(MAX_BACKOFF.total_seconds(), 2 ** min(attempts, 10))
    return timedelta(seconds=seconds * (0.75 + random.random() / 2))  # noqa: S311 - jitter, not security


def _first_open_of_its_inquiry() -> Any:
    """No older message of the same inquiry is still undelivered. An inquiry's messages go to the center
    in the order they were written: a cancellation queued while a correction waits for its retry must not
    overtake it (the center refuses to correct a cancelled inquiry, and the correction is lost)."""
    earlier = aliased(OutboxMessage)
    return ~(
        select(earlier.id)
        .where(
            earlier.inquiry_id == OutboxMessage.inquiry_id,
            earlier.id < OutboxMessage.id,
            earlier.delivered_at.is_(None),
        )
        .exists()
    )


async def due_messages(ctx: AppContext, *, limit: int = 50) -> list[int]:
    now = ctx.clock.now()
    async with ctx.db.read_session() as session:
        rows = await session.scalars(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                _first_open_of_its_inquiry(),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        return list(rows.all())


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
# Columns of an inquiry that stay NULL until it is sent, released or cancelled: left out of the draft's
# INSERT, so the submitting request's copy of a queued inquiry has them unloaded.
_NULL_WHILE_QUEUED = frozenset(
    {
        "center_inquiry_id",
        "sent_at",
        "center_result_code",
        "released_by",
        "released_at",
        "document_check",
        "release_note_sealed",
        "release_note_nonce",
        "release_note_wrapped_key",
        "release_note_kek_id",
        "cancelled_at",
        "cancelled_by",
        "cancel_confirmer_id",
        "cancel_reason_sealed",
        "cancel_reason_nonce",
        "cancel_reason_wrapped_key",
        "cancel_reason_kek_id",
    }
)


async def _attach_queued(session: AsyncSession, sent: Inquiry) -> Inquiry:
    """The claimed inquiry in ``session`` without reading it back.

    A queued inquiry changes only when its answer is stored, and the row guard in the caller makes that
    happen once, so the copy the claim (or the submit) holds is current. Anything else unloaded — an
    expired copy — is read again.
    """
    state = inspect(sent)
    if state.expired or state.unloaded - _NULL_WHILE_QUEUED or state.identity is None:
        identity = state.identity[0] if state.identity else sent.id
        fresh = await session.get(Inquiry, identity, with_for_update=True)
        assert fresh is not None
        return fresh
    unloaded = set(state.unloaded)
    inquiry = await session.merge(sent, load=False)
    for key in unloaded:
        set_committed_value(inquiry, key, None)
    return inquiry


# Built once: it runs for every answer stored.
_MARK_DELIVERED = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("message_id"), _OUTBOX.c.delivered_at.is_(None))
    .values(
        delivered_at=bindparam("stored_at"),
        center_recorded_at=bindparam("center_recorded_at"),
        claimed_until=None,
    )
    .returning(_OUTBOX.c.attempts)
)


def _claim_lease(ctx: AppContext) -> timedelta:
    return timedelta(seconds=ctx.settings.outbox_claim_lease_seconds)


async def _claim(ctx: AppContext, message_id: int) -> tuple[OutboxMessage, Inquiry] | None:
    """Take the row for one lease and read what is to be sent, in one short transaction."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.delivered_at.is_(None),
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                _first_open_of_its_inquiry(),
            )
            .values(claimed_until=now + _claim_lease(ctx), attempts=OutboxMessage.attempts + 1)
        )
        if not getattr(result, "rowcount", 0):
            await session.rollback()
            return None
        message = await session.get(OutboxMessage, message_id)
        inquiry = await session.get(Inquiry, message.inquiry_id) if message else None
        await session.commit()
    if message is None or inquiry is None:
        return None
    return message, inquiry


# A delivery renews its row's lease once it has waited for half of it (``_keep_claim``), so a call can
# start with half the lease left; the lease must therefore cover the slowest call twice over.
LEASE_PER_SLOWEST_CALL = 2


def check_claim_lease(lease_seconds: float, slowest_call_seconds: float) -> None:
    """Refuse (ValueError, at start-up) a lease a center call could outlive: another sender would take
    the row while its call still runs — two calls at once for one inquiry, which the lease prevents."""
    needed = LEASE_PER_SLOWEST_CALL * slowest_call_seconds
    if lease_seconds < needed:
        raise ValueError(
            f"SHOKAI_OUTBOX_CLAIM_LEASE_SECONDS ({lease_seconds:g}) must be at least {needed:g}: twice the"
            f" slowest center call ({slowest_call_seconds:g} s: attempts × timeouts + backoff)"
        )


async def _keep_claim(ctx: AppContext, message: OutboxMessage) -> bool:
    """Whether a row the submit wrote claimed is still this process's to send, renewing its lease first
    if the task has waited for a sender slot for half of it or more.

    Without this, a task that waited out the lease (many submits at once, a slow center) sent a row
    another worker had meanwhile claimed as due: two senders with one idempotency key at once, which only
    a center that deduplicates concurrent requests keeps from harm. The renewal is conditional on the
    lease being the one the submit wrote; when another sender has taken the row, this one leaves it.
    """
    lease = _claim_lease(ctx)
    now = ctx.clock.now()
    written = message.claimed_until
    if written is None or now < written - lease / LEASE_PER_SLOWEST_CALL:
        return True  # the usual case: no wait worth a transaction
    async with ctx.db.session() as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message.id,
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.claimed_until == written,
            )
            .values(claimed_until=now + lease)
        )
        if not getattr(result, "rowcount", 0):
            await session.rollback()
            log.warning("outbox row taken over while it waited for a slot", extra={"outbox_id": message.id})
            return False
        await session.commit()
    set_committed_value(message, "claimed_until", now + lease)
    return True


async def deliver(ctx: AppContext, message_id: int) -> str:
    """Deliver one outbox message; returns what happened (delivered, refused, retry, held, skipped)."""
    claimed = await _claim(ctx, message_id)
    if claimed is None:
        return "skipped"
    message, inquiry = claimed
    outcome, _ = await _send(ctx, message, inquiry)
    return outcome


async def _send(ctx: AppContext, message: OutboxMessage, inquiry: Inquiry) -> tuple[str, Inquiry | None]:
    """Call the center for a row claimed by this process and store the outcome; the inquiry as stored."""
    message_id = message.id
    # Both paths (the sender's and the submitting request's) pass here, so a switch thrown between the
    # submit and the call still keeps the inquiry from the center (IR-1).
    if message.kind == "inquire" and await _held_by_switch(ctx, message_id, inquiry):
        return "held", None
    try:
        request = _center_request(ctx, message, inquiry)
    except ValidationError as invalid:
        ctx.metrics.center_errors.labels(message.kind, NOT_SENDABLE).inc()
        stored = await _store_not_sendable(ctx, message_id, invalid)
        ctx.deliveries.settled(inquiry.id)
        ctx.metrics.center_calls.labels(message.kind, "refused").inc()
        return "refused", stored
    stored = None
    started = time.perf_counter()
    try:
        if isinstance(request, CenterInquiryRequest):
            answer = await ctx.center.inquire(request)
            record_json = answer.record.model_dump(mode="json") if answer.record is not None else None
            stored = await _store_answer(
                ctx,
                message_id,
                inquiry,
                answer.center_inquiry_id,
                answer.received_at,
                {"result": answer.result, "record": record_json},
            )
            ctx.deliveries.settled(inquiry.id)
        elif isinstance(request, CenterCorrectRequest):
            correction = await ctx.center.correct(inquiry.center_inquiry_id or "", request)
            await _mark_cancel_delivered(
                ctx, message_id, correction.corrected_at, action="center.correction_sent"
            )
        else:
            cancellation = await ctx.center.cancel(
                inquiry.center_inquiry_id or "", request.reason, request.idempotency_key or ""
            )
            await _mark_cancel_delivered(ctx, message_id, cancellation.cancelled_at)
        ctx.metrics.center_calls.labels(message.kind, "delivered").inc()
        return "delivered", stored
    except CenterRefused as refusal:
        ctx.metrics.center_errors.labels(message.kind, refusal.code).inc()
        stored = await _store_refusal(
            ctx, message_id, refusal.code, refusal.center_inquiry_id, recorded_at=refusal.received_at
        )
        ctx.deliveries.settled(inquiry.id)
        ctx.metrics.center_calls.labels(message.kind, "refused").inc()
        return "refused", stored
    except CenterUnavailable as failure:
        ctx.metrics.center_errors.labels(message.kind, "unavailable").inc()
        await _schedule_retry(
            ctx,
            message_id,
            type(failure).__name__ if not str(failure) else str(failure)[:200],
            sent=failure.attempts > 0,
            retry_after=failure.retry_after,
        )
        ctx.metrics.center_calls.labels(message.kind, "retry").inc()
        return "retry", None
    finally:
        # Includes storing the answer; the center's own share is the bulk of it.
        ctx.metrics.center_latency.labels(message.kind).observe(time.perf_counter() - started)


def _center_request(
    ctx: AppContext, message: OutboxMessage, inquiry: Inquiry
) -> CenterInquiryRequest | CenterCorrectRequest | CenterCancelRequest:
    """The center's request for a row, checked against the center's contract before any call: a
    ValidationError here is the gateway's (what it stored), never the center's answer."""
    if message.kind == "inquire":
        # Validated as one document, so a field at fault is named from the request (subject.address).
        return CenterInquiryRequest.model_validate(
            {
                "member_code": ctx.settings.center_member_code,
                "branch_code": inquiry.branch_code,
                "terminal_id": inquiry.terminal_id or "-",
                "operator_ref": inquiry.operator_id,
                "purpose": inquiry.purpose,
                "subject": open_subject(ctx, inquiry),
                "idempotency_key": message.idempotency_key,
            }
        )
    payload = json.loads(open_text(ctx.keyring, message, "payload", key=message.idempotency_key) or "{}")
    if message.kind == "correct":
        return CenterCorrectRequest(
            reason=payload["reason"], purpose=payload["purpose"], idempotency_key=message.idempotency_key
        )
    # The inquiry keeps the whole reason (up to 400 characters); the center records the first part.
    return CenterCancelRequest(
        reason=payload.get("reason", "")[:CENTER_REASON_MAX_LENGTH], idempotency_key=message.idempotency_key
    )


async def _store_answer(
    ctx: AppContext,
    message_id: int,
    sent: Inquiry,
    center_inquiry_id: str,
    received_at: datetime,
    content: dict[str, object],
) -> Inquiry | None:
    """Store the answer for ``sent`` (the inquiry as claimed, unchanged while it is queued)."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        # Marking the row delivered comes first and is the guard (on PostgreSQL also the row lock): a
        # second sender whose lease overlapped finds it delivered and stores nothing. One Core statement
        # instead of reading the row and the inquiry back.
        attempts = await session.scalar(
            _MARK_DELIVERED, {"message_id": message_id, "stored_at": now, "center_recorded_at": received_at}
        )
        if attempts is None:
            await session.rollback()
            return None
        # A queued inquiry changes only here, so the claimed copy is current: no SELECT to attach it.
        inquiry = await _attach_queued(session, sent)
        sealed: Sealed = seal(
            ctx.keyring,
            json.dumps(content, ensure_ascii=False).encode(),
            associated_data=response_aad(inquiry.id),
        )
        session.add(
            SealedResponse(
                inquiry_id=inquiry.id,
                center_inquiry_id=center_inquiry_id,
                received_at=received_at,
                ciphertext=sealed.ciphertext,
                nonce=sealed.nonce,
                wrapped_key=sealed.wrapped_key,
                kek_id=sealed.kek_id,
            )
        )
        inquiry.center_inquiry_id = center_inquiry_id
        if inquiry.sent_at is None:
            inquiry.sent_at, inquiry.center_recorded_at = now, received_at
        inquiry.center_result_code = str(content.get("result", "found")).upper()
        method_b = "B" in ctx.policy.methods_for(inquiry.branch_code) or (
            inquiry.hq_request_id is not None
            and await hq_execution.releasing_request(session, ctx=ctx, inquiry=inquiry) is not None
        )
        # Without method B the response is released on receipt, but every read is still logged.
        inquiry.status = "held" if method_b else "released"
        inquiry.response_state = "held" if method_b else "released"
        if not method_b:
            inquiry.released_at = now
        inquiry.updated_at = now
        record(
            session,
            actor=SYSTEM_ACTOR,
            action="center.inquiry_sent",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"center_inquiry_id": center_inquiry_id, "attempts": attempts},
        )
        record(
            session,
            actor=SYSTEM_ACTOR,
            action="inquiry.response_received",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"state": inquiry.response_state, "result": inquiry.center_result_code},
        )
        await session.commit()
    return inquiry


async def _store_not_sendable(ctx: AppContext, message_id: int, invalid: ValidationError) -> Inquiry | None:
    """Settle a row whose request the center's contract cannot carry: the inquiry goes to center_error
    with NOT_SENDABLE and the ledger names the fields at fault (never their values)."""
    fields = sorted({".".join(map(str, error["loc"])) for error in invalid.errors(include_input=False)})
    return await _store_refusal(
        ctx, message_id, NOT_SENDABLE, None, sent=False, action="center.not_sendable", fields=fields
    )


async def _store_refusal(
    ctx: AppContext,
    message_id: int,
    code: str,
    center_inquiry_id: str | None,
    *,
    sent: bool = True,
    recorded_at: datetime | None = None,
    action: str = "center.refused",
    fields: list[str] | None = None,
) -> Inquiry | None:
    """Settle a row the center refused (``code`` as the center gave it) or, ``sent`` false, one that was
    never sent (``code`` as it stands). ``recorded_at``: when the center recorded the refused inquiry,
    if it said."""
    result_code = f"CENTER_{code}" if sent else code
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        message = await session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.delivered_at is not None:
            return None
        inquiry = await session.get(Inquiry, message.inquiry_id, with_for_update=True)
        assert inquiry is not None
        message.delivered_at = now
        message.center_recorded_at = (recorded_at or now) if sent else None
        message.claimed_until = None
        message.last_error = code
        if message.kind == "inquire":
            inquiry.status = "center_error"
            inquiry.center_result_code = result_code
            # The center records a refused inquiry too (NO_TRADE_INFO); keep its id for reconciliation.
            inquiry.center_inquiry_id = center_inquiry_id or inquiry.center_inquiry_id
            if sent and inquiry.sent_at is None:
                inquiry.sent_at, inquiry.center_recorded_at = now, recorded_at or now
            inquiry.updated_at = now
        # The operator is named so repeated NO_TRADE_INFO per operator can be counted (PL-2: probing).
        details: dict[str, object] = {
            "code": result_code,
            "kind": message.kind,
            "operator_id": inquiry.operator_id,
        }
        if fields is not None:
            details["fields"] = fields
        if message.kind in FOLLOW_UP_ESCALATIONS:
            # The gateway already shows the inquiry cancelled (or corrected) while the center's record
            # does not: the branch must take it up with the center now, not at the month's reconciliation.
            escalation = Escalation(
                id=str(uuid.uuid4()),
                kind=FOLLOW_UP_ESCALATIONS[message.kind],
                branch_code=inquiry.branch_code,
                object_type="inquiry",
                object_id=inquiry.id,
                recipients=["branch_manager", "hq_compliance"],
                created_at=now,
                note=result_code,
            )
            session.add(escalation)
            details["escalation_id"] = escalation.id
        record(
            session,
            actor=SYSTEM_ACTOR,
            action=action,
            object_type="inquiry",
            object_id=inquiry.id,
            outcome="failure",
            details=details,
        )
        await session.commit()
    return inquiry


async def _mark_cancel_delivered(
    ctx: AppContext, message_id: int, recorded_at: datetime, *, action: str = "center.cancellation_sent"
) -> None:
    """A cancellation (or correction, ``action``) the center has recorded at ``recorded_at``: the row is
    done."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        message = await session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.delivered_at is not None:
            return
        message.delivered_at = now
        message.center_recorded_at = recorded_at
        message.claimed_until = None
        record(
            session,
            actor=SYSTEM_ACTOR,
            action=action,
            object_type="inquiry",
            object_id=message.inquiry_id,
            details={"attempts": message.attempts},
        )
        await session.commit()


# When the circuit breaker refused a call, the row is due again once the breaker lets a trial call
# through, spread over this much so a queue of rows does not meet the recovering center all at once, and
# never sooner than the floor, so rows refused while the trial call is out do not spin the sender.
CIRCUIT_RETRY_FLOOR = timedelta(seconds=1)
CIRCUIT_RETRY_SPREAD_SECONDS = 5.0


async def _schedule_retry(
    ctx: AppContext, message_id: int, error: str, *, sent: bool = True, retry_after: float | None = None
) -> None:
    """Put a row back for later. ``sent`` false: the circuit breaker refused the call before anything
    went out — not an attempt, so it neither counts nor grows the backoff, and the row is due when the
    breaker opens again (``retry_after``) instead of minutes after the center is back."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        message = await session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.delivered_at is not None:
            return
        message.claimed_until = None
        message.last_error = error
        if sent:
            message.next_attempt_at = now + _backoff(message.attempts)
        else:
            message.attempts = max(0, message.attempts - 1)
            spread = random.uniform(0, CIRCUIT_RETRY_SPREAD_SECONDS)  # noqa: S311 - jitter, not security
            wait = max(CIRCUIT_RETRY_FLOOR, timedelta(seconds=(retry_after or 0) + spread))
            message.next_attempt_at = now + wait
        await session.commit()


# How often an inquiry held by an emergency switch is looked at again; once lifted it goes out then.
SWITCH_RECHECK = timedelta(seconds=30)
HELD_BY_SWITCH = "EMERGENCY_SUSPENSION"


async def switch_holding(session: AsyncSession, inquiry: Inquiry) -> EmergencySuspension | None:
    """The active switch that keeps ``inquiry`` from the center: on its operator, terminal or branch, or
    on all inquiries (IR-1). The sender asks before each call; a withdrawal asks before it withdraws."""
    return await active_suspension(
        session,
        user_id=inquiry.operator_id,
        terminal_id=inquiry.terminal_id,
        branch_code=inquiry.branch_code,
        include_all=True,
    )


async def _held_by_switch(ctx: AppContext, message_id: int, inquiry: Inquiry) -> bool:
    """An emergency switch (IR-1) on the inquiry's branch, terminal or operator, or on all inquiries,
    keeps an inquiry queued before it was sent: not sent, not failed, sent once the switch is lifted."""
    async with ctx.db.read_session() as reader:
        suspension = await switch_holding(reader, inquiry)
    if suspension is None:
        return False
    async with ctx.db.session() as session:
        message = await session.get(OutboxMessage, message_id, with_for_update=True)
        if message is None or message.delivered_at is not None:
            return True
        first_hold = message.last_error != HELD_BY_SWITCH
        message.claimed_until = None
        # The claim counted a call to the center that was not made.
        message.attempts = max(0, message.attempts - 1)
        message.last_error = HELD_BY_SWITCH
        message.next_attempt_at = ctx.clock.now() + SWITCH_RECHECK
        if first_hold:
            record(
                session,
                actor=SYSTEM_ACTOR,
                action="center.send_held",
                object_type="inquiry",
                object_id=inquiry.id,
                outcome="denied",
                details={"emergency_suspension_id": suspension.id, "scope": suspension.scope},
            )
        await session.commit()
    return True


class OutboxSender:
    """Delivers due messages in the background; ``kick()`` wakes it at once after a submit.

    Each message is delivered by its own task, so one slow center call does not hold back the answers
    to inquiries submitted after it; ``concurrency`` bounds the calls in flight.
    """

    def __init__(self, ctx: AppContext, *, idle_seconds: float = 1.0, concurrency: int = 8) -> None:
        self._ctx = ctx
        self._idle = idle_seconds
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: dict[int, asyncio.Task[Any]] = {}

    def kick(self) -> None:
        self._wake.set()

    async def _deliver_one(self, message_id: int) -> None:
        async with self._slots:
            try:
                await deliver(self._ctx, message_id)
            except Exception:
                # A bug in one delivery must not stop the others; the row stays due and is retried.
                log.exception("outbox delivery failed", extra={"outbox_id": message_id})

    def deliver_claimed(self, message: OutboxMessage, inquiry: Inquiry) -> None:
        """Deliver a row the submit wrote claimed for this process, now, without the due query and the
        claim; the submitting request waits for the task (``DeliverySignals.take_started``).

        A task of its own, so the delivery finishes even when the waiting request gives up or its client
        goes away; cancelled with the sender, the row is then retried when its lease runs out.
        """
        task = asyncio.create_task(self._deliver_claimed(message, inquiry))
        self._in_flight[message.id] = task
        task.add_done_callback(functools.partial(self._forget, message.id))
        self._ctx.deliveries.started(inquiry.id, task)

    async def _deliver_claimed(self, message: OutboxMessage, inquiry: Inquiry) -> Inquiry | None:
        # The same slots as the sender's own deliveries: ``concurrency`` still bounds the center calls.
        try:
            async with self._slots:
                if not await _keep_claim(self._ctx, message):
                    return None
                _, stored = await _send(self._ctx, message, inquiry)
            return stored
        except Exception:
            # As in _deliver_one: the row stays claimed until its lease ends and is retried then.
            log.exception("outbox delivery failed", extra={"outbox_id": message.id})
            return None

    def _forget(self, message_id: int, _task: asyncio.Task[Inquiry | None]) -> None:
        self._in_flight.pop(message_id, None)

    def _start(self, ids: list[int]) -> list[asyncio.Task[None]]:
        started = []
        for message_id in ids:
            if message_id in self._in_flight:
                continue
            task = asyncio.create_task(self._deliver_one(message_id))
            self._in_flight[message_id] = task
            task.add_done_callback(functools.partial(self._finished, message_id))
            started.append(task)
        return started

    def _finished(self, message_id: int, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(message_id, None)
        # A finished delivery frees a slot and may have left more rows due behind it.
        self._wake.set()

    async def deliver_due(self) -> int:
        """Deliver every message due now and wait for them (used by tests and the CLI)."""
        ids = await due_messages(self._ctx)
        await asyncio.gather(*self._start(ids))
        return len(ids)

    async def run_forever(self) -> None:
        try:
            while True:
                # Clear before looking, so a kick that arrives during the query is not lost.
                self._wake.clear()
                try:
                    self._start(await due_messages(self._ctx))
                except Exception:
                    log.exception("outbox sweep failed")
                # asyncio.timeout, not wait_for, which on Python 3.11 can lose the shutdown's cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle):
                        await self._wake.wait()
        finally:
            for task in list(self._in_flight.values()):
                task.cancel()
