"""Destroying response content at the end of its use period (RT-1) and keeping it destroyed after a
restore from backup (RT-2).

A response is sealed with its own data key (EN-1), so destroying it is deleting that wrapped key
(crypto-shredding); the ciphertext is emptied too. The inquiry's metadata and sealed subject stay for the
retention of the daily lists, and the inquiry shows ``response.state: destroyed``; every reader then gets
410 ``RESPONSE_DESTROYED``.

Two people, as for every other irreversible change: one security officer requests the purge of what
has passed its use period (the policy's ``response_use_days`` from receipt), a second approves it, and
the approval carries it out. The deletion record names both, the data set, the range, the count and the
method; each inquiry's trace (LG-5) shows its response's destruction. The record is written to the
deletion journal outside the database before the commit (``app/retention/journal.py``), and
``reapply_journal`` — run when the gateway starts and by ``shokai retention reapply`` — destroys again
whatever a restored database brought back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.clock import rfc3339
from app.context import AppContext
from app.errors import InvalidState, NotFound
from app.idempotency import UNKEYED, KeyedRequest, commit_keyed, remember_idempotency, replayed_object
from app.inquiry.models import Inquiry, SealedResponse
from app.pagination import keyset_page
from app.retention import journal
from app.retention.models import DeletionRecord, PurgeRequest

log = logging.getLogger("shokai.retention")

RESPONSES = "inquiry_responses"
CRYPTO_SHRED = "crypto_shred"
RETENTION_ACTOR = Actor(id="system:retention", roles=("system",))


def use_period_cutoff(ctx: AppContext) -> datetime:
    """Responses received before this instant have passed their use period."""
    return ctx.clock.now() - timedelta(days=ctx.policy.response_use_days)


def use_period_end(ctx: AppContext, received_at: datetime) -> datetime:
    """When a response received at ``received_at`` passes its use period and may be destroyed: the
    instant from which :func:`use_period_cutoff` lies after its receipt."""
    return received_at + timedelta(days=ctx.policy.response_use_days)


def _undestroyed_before(cutoff: datetime) -> ColumnElement[bool]:
    return (SealedResponse.wrapped_key.is_not(None)) & (SealedResponse.received_at < cutoff)


async def request_purge(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    reason: str,
    keyed: KeyedRequest = UNKEYED,
) -> PurgeRequest:
    """Ask for the destruction of every response past its use period now; nothing is destroyed until a
    second officer approves. With an Idempotency-Key a retry gets the first request, not 409 for it."""
    authorize(principal, "retention.purge")
    if (replayed := await replayed_object(session, PurgeRequest, keyed, principal=principal)) is not None:
        return replayed
    cutoff = use_period_cutoff(ctx)
    due = await session.scalar(
        select(func.count()).select_from(SealedResponse).where(_undestroyed_before(cutoff))
    )
    if not due:
        raise InvalidState("No response has passed its use period")
    pending = await session.scalar(select(PurgeRequest.id).where(PurgeRequest.status == "pending").limit(1))
    if pending is not None:
        raise InvalidState("A purge request is already waiting for its approval")
    purge = PurgeRequest(
        id=str(uuid.uuid4()),
        data_set=RESPONSES,
        cutoff=cutoff,
        expected_count=int(due),
        reason=reason,
        status="pending",
        pending_slot=1,
        requested_by=principal.id,
        requested_at=ctx.clock.now(),
    )
    session.add(purge)
    # The reason is free text and stays out of the ledger.
    record(
        session,
        actor=principal.actor(),
        action="retention.purge_requested",
        object_type="retention_purge",
        object_id=purge.id,
        details={"data_set": RESPONSES, "cutoff": rfc3339(cutoff), "count": int(due)},
    )
    try:
        return await commit_keyed(session, ctx, purge, keyed, principal=principal)
    except IntegrityError:
        # uq_retention_purge_requests_pending_slot: another officer's request went in at the same moment.
        raise InvalidState("A purge request is already waiting for its approval") from None


async def approve_purge(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    purge_id: str,
    keyed: KeyedRequest = UNKEYED,
) -> tuple[PurgeRequest, DeletionRecord]:
    """A second officer approves a purge request, which destroys the responses it covers at once.

    With an Idempotency-Key, the retry of an approval whose answer was lost gets the purge it carried
    out instead of 409, also when it waited for the first attempt's lock."""
    authorize(principal, "retention.purge")
    if (replayed := await _replayed_approval(session, keyed, principal=principal)) is not None:
        return replayed
    purge = await session.get(PurgeRequest, purge_id, with_for_update=True)
    if purge is None:
        raise NotFound("No such purge request")
    if purge.status != "pending":
        if (replayed := await _replayed_approval(session, keyed, principal=principal)) is not None:
            return replayed
        raise InvalidState("The purge request has been carried out")
    ensure_different_people(principal.id, others={"the officer who requested it": purge.requested_by})
    if purge.cutoff > use_period_cutoff(ctx):
        # The policy's use period was lengthened since the request: what it covers may still be in use.
        raise InvalidState("The use period has been lengthened since this request: request the purge again")
    now = ctx.clock.now()
    deletion_id = str(uuid.uuid4())
    destroyed, earliest = await _destroy_responses(session, cutoff=purge.cutoff, deletion_id=deletion_id)
    deletion = DeletionRecord(
        id=deletion_id,
        data_set=purge.data_set,
        range_from=earliest,
        range_to=purge.cutoff,
        count=destroyed,
        method=CRYPTO_SHRED,
        operator=purge.requested_by,
        approver=principal.id,
        at=now,
    )
    session.add(deletion)
    _carried_out(purge, by=principal.id, at=now, deletion_id=deletion_id)
    record(
        session,
        actor=principal.actor(),
        action="retention.purged",
        object_type="retention_deletion",
        object_id=deletion_id,
        details={
            "purge_id": purge.id,
            "data_set": purge.data_set,
            "count": destroyed,
            "method": CRYPTO_SHRED,
        },
    )
    remember_idempotency(
        session,
        ctx,
        key=keyed.key,
        principal=principal,
        endpoint=keyed.endpoint,
        fingerprint=keyed.fingerprint,
        object_id=purge.id,
        status_code=200,
    )
    # Everything is written before the journal line, so that what can still refuse the approval (the
    # key's record taken by a concurrent request) does so before it, not in a commit after it.
    await session.flush()
    # Before the commit: a purge the journal does not know could come back with a restore (RT-2).
    journal.append(ctx.settings, _journal_entry(deletion, purge_id=purge.id))
    await session.commit()
    return purge, deletion


async def _replayed_approval(
    session: AsyncSession, keyed: KeyedRequest, *, principal: Principal
) -> tuple[PurgeRequest, DeletionRecord] | None:
    purge = await replayed_object(session, PurgeRequest, keyed, principal=principal)
    if purge is None:
        return None
    deletion = await session.get(DeletionRecord, purge.deletion_id) if purge.deletion_id else None
    if deletion is None:
        raise InvalidState("The deletion this Idempotency-Key made is no longer there")
    return purge, deletion


async def _destroy_responses(
    session: AsyncSession, *, cutoff: datetime, deletion_id: str
) -> tuple[int, datetime | None]:
    """Delete the data key (and empty the ciphertext) of every response received before ``cutoff`` that
    still has one, marking it with the deletion that destroyed it; the number destroyed and the earliest
    receipt among them.

    Two set-based statements, however many responses are due: a month's responses of a large bank are
    hundreds of thousands, and a row (or a ledger event) each would hold the writer lock, and on
    PostgreSQL the ledger head, for minutes. The inquiries' traces find the destruction through the
    response's ``deletion_id`` (LG-5), so one ledger event tells of all of them."""
    earliest = await session.scalar(
        select(func.min(SealedResponse.received_at)).where(_undestroyed_before(cutoff))
    )
    if earliest is None:
        return 0, None
    destroyed = cast(
        "CursorResult[Any]",
        await session.execute(
            update(SealedResponse)
            .where(_undestroyed_before(cutoff))
            .values(wrapped_key=None, ciphertext=b"", deletion_id=deletion_id)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    await session.execute(
        update(Inquiry)
        .where(
            Inquiry.id.in_(
                select(SealedResponse.inquiry_id).where(SealedResponse.deletion_id == deletion_id)
            ),
            Inquiry.response_state != "destroyed",
        )
        .values(response_state="destroyed")
        .execution_options(synchronize_session=False)
    )
    return destroyed, earliest


def _carried_out(purge: PurgeRequest, *, by: str, at: datetime, deletion_id: str) -> None:
    purge.status, purge.pending_slot = "executed", None
    purge.approved_by, purge.approved_at, purge.deletion_id = by, at, deletion_id


def _journal_entry(deletion: DeletionRecord, *, purge_id: str) -> journal.JournalEntry:
    return journal.JournalEntry(
        id=deletion.id,
        data_set=deletion.data_set,
        range_from=deletion.range_from.isoformat() if deletion.range_from else None,
        range_to=deletion.range_to.isoformat(),
        count=deletion.count,
        method=deletion.method,
        operator=deletion.operator,
        approver=deletion.approver,
        at=deletion.at.isoformat(),
        purge_id=purge_id,
    )


async def reapply_journal(ctx: AppContext) -> int:
    """Carry out every deletion of the journal again (RT-2): after a restore from a backup older than a
    purge, the responses it destroyed are destroyed again and its missing deletion record is put back.
    Idempotent: on a database that is not behind the journal it changes nothing and records nothing.
    The number of responses destroyed again."""
    if ctx.settings.deletion_journal_path is None and ctx.settings.database_url.startswith("postgresql"):
        # A server database with the journal in this host's data directory: another host's gateways do
        # not see this host's purges, and a backup of the directory rolls the journal back with it.
        log.warning(
            "deletion journal in the data directory: set SHOKAI_DELETION_JOURNAL_PATH to a file every "
            "gateway reaches and the database backups do not hold (docs/operations.md)"
        )
    entries = journal.entries(ctx.settings)
    # One purge is carried out once: an earlier line for the same purge is an approval whose commit
    # failed before it was approved again, and is no deletion of its own.
    last_for_purge = {entry.purge_id: entry.id for entry in entries if entry.purge_id}
    again = 0
    for entry in entries:
        if entry.data_set != RESPONSES:
            log.warning(
                "deletion journal: a line for data set %s, which nothing here destroys", entry.data_set
            )
            continue
        if entry.purge_id and last_for_purge[entry.purge_id] != entry.id:
            continue
        async with ctx.db.session() as session:
            destroyed = await _reapply(session, ctx, entry)
            if destroyed is None:
                continue
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                async with ctx.db.read_session() as check:
                    if await check.get(DeletionRecord, entry.id) is None:
                        raise
                # Another worker of this gateway, starting at the same moment, put the record back first,
                # in the transaction that destroyed the same responses.
                continue
            again += destroyed
    return again


async def _reapply(session: AsyncSession, ctx: AppContext, entry: journal.JournalEntry) -> int | None:
    """One journal entry against the database: how many responses it destroyed again, or None when the
    database is not behind it (nothing to commit, nothing recorded).

    Only an entry whose deletion record the database lacks destroys anything: a record and its
    destruction commit together, so where the record is, the destruction is too — and destroying again by
    the cutoff alone would take responses that arrived since with an older center time, unapproved."""
    if await session.get(DeletionRecord, entry.id) is not None:
        return None
    purge = await session.get(PurgeRequest, entry.purge_id, with_for_update=True) if entry.purge_id else None
    if purge is not None and purge.status == "pending":
        # The approval was journaled, then its commit failed: it is carried out now, with what it destroys
        # now as its count — unless the use period has been lengthened since, as at the approval itself.
        if entry.cutoff > use_period_cutoff(ctx):
            log.warning(
                "deletion journal: a purge approved before the use period was lengthened is left pending"
            )
            return None
        destroyed, earliest = await _destroy_responses(session, cutoff=entry.cutoff, deletion_id=entry.id)
        _carried_out(purge, by=entry.approver, at=datetime.fromisoformat(entry.at), deletion_id=entry.id)
        session.add(_record(entry, count=destroyed, range_from=earliest))
    elif purge is None or purge.deletion_id in (None, entry.id):
        # A restore from before the purge (or before its request): destroyed again, and the record comes
        # back as it was made.
        destroyed, _ = await _destroy_responses(session, cutoff=entry.cutoff, deletion_id=entry.id)
        session.add(_record(entry, count=entry.count, range_from=None))
    else:
        # The purge was carried out under another record: this line destroyed nothing.
        return None
    record(
        session,
        actor=RETENTION_ACTOR,
        action="retention.reapplied",
        object_type="retention_deletion",
        object_id=entry.id,
        outcome="alert",
        details={"destroyed_again": destroyed, "record_restored": True},
    )
    return destroyed


def _record(entry: journal.JournalEntry, *, count: int, range_from: datetime | None) -> DeletionRecord:
    journaled_from = datetime.fromisoformat(entry.range_from) if entry.range_from else None
    return DeletionRecord(
        id=entry.id,
        data_set=entry.data_set,
        range_from=range_from or journaled_from,
        range_to=entry.cutoff,
        count=count,
        method=entry.method,
        operator=entry.operator,
        approver=entry.approver,
        at=datetime.fromisoformat(entry.at),
    )


async def list_deletions(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[DeletionRecord], str | None]:
    authorize(principal, "retention.read")
    return await keyset_page(
        session,
        select(DeletionRecord),
        at=DeletionRecord.at,
        row_id=DeletionRecord.id,
        limit=limit,
        cursor=cursor,
    )


async def list_purges(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[PurgeRequest], str | None]:
    authorize(principal, "retention.read")
    return await keyset_page(
        session,
        select(PurgeRequest),
        at=PurgeRequest.requested_at,
        row_id=PurgeRequest.id,
        limit=limit,
        cursor=cursor,
    )
