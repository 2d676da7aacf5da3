"""Audit endpoints (LG-2). Reading the ledger is itself recorded before anything is returned."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.audit import service
from app.audit.ledger import record
from app.audit.schemas import CheckpointOut, CheckpointPage, VerifyOut
from app.authz.deps import AuditReader
from app.crypto.keyring import public_key_pem
from app.deps import Context, DbSession
from app.errors import ValidationFailed, problem_responses

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get(
    "/events",
    summary="Stream ledger events as NDJSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **problem_responses(401, 403, 422)},
)
async def events(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: Annotated[str | None, Query(max_length=80)] = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    object_id: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> StreamingResponse:
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise ValidationFailed("since/until need a time zone (RFC 3339)")
    where = service.EventFilter(
        after_seq=after_seq,
        since=since,
        until=until,
        actor_id=actor_id,
        action=action,
        object_id=object_id,
        limit=limit,
    )
    record(
        session,
        actor=principal.actor(),
        action="audit.events_read",
        object_type="ledger",
        details=where.as_details(),
    )
    await session.commit()
    return StreamingResponse(service.stream_events(ctx.db, where), media_type="application/x-ndjson")


@router.get(
    "/verify",
    summary="Verify the whole chain and its checkpoints",
    response_model=VerifyOut,
    responses=problem_responses(401, 403),
)
async def verify(principal: AuditReader, session: DbSession, ctx: Context) -> VerifyOut:
    report = await service.verify_ledger(ctx.db, ctx.keyring)
    record(
        session,
        actor=principal.actor(),
        action="audit.verified",
        object_type="ledger",
        outcome="success" if report.ok else "failure",
        details={"checked": report.checked, "first_bad_seq": report.first_bad_seq, "reason": report.reason},
    )
    await session.commit()
    return VerifyOut.model_validate(report.as_dict())


@router.get(
    "/checkpoints",
    summary="Signed checkpoints, with the public keys to check them",
    response_model=CheckpointPage,
    responses=problem_responses(401, 403, 422),
)
async def checkpoints(
    principal: AuditReader,
    session: DbSession,
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
) -> CheckpointPage:
    after = int(cursor) if cursor else 0
    rows = await service.list_checkpoints(session, after_seq=after, limit=limit)
    record(
        session,
        actor=principal.actor(),
        action="audit.checkpoints_read",
        object_type="ledger",
        details={"after_seq": after, "count": len(rows)},
    )
    await session.commit()
    items = [
        CheckpointOut(seq=r.seq, hash=r.hash, at=r.at, key_id=r.key_id, signature=r.signature) for r in rows
    ]
    return CheckpointPage(
        items=items,
        next_cursor=str(rows[-1].seq) if len(rows) == limit else None,
        public_keys={kid: public_key_pem(key) for kid, key in ctx.keyring.checkpoint_public_keys().items()},
    )
