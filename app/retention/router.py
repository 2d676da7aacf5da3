from __future__ import annotations

from fastapi import APIRouter, status

from app.authz.schemas import Page
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.idempotency import IdempotencyKey, keyed_request
from app.pagination import PageCursor, PageLimit
from app.retention import service
from app.retention.deps import PurgeOfficer, RetentionReader
from app.retention.schemas import DeletionOut, PurgeIn, PurgeOut

router = APIRouter(prefix="/retention", tags=["retention"])


@router.post(
    "/purges",
    summary="Request the destruction of every response past its use period (RT-1; a second officer approves)",
    status_code=status.HTTP_201_CREATED,
    response_model=PurgeOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def request_purge(
    body: PurgeIn,
    principal: PurgeOfficer,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> PurgeOut:
    purge = await service.request_purge(
        session,
        ctx=ctx,
        principal=principal,
        reason=body.reason,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="retention.purge_request", body=body.model_dump(mode="json")
        ),
    )
    return PurgeOut.model_validate(purge)


@router.post(
    "/purges/{purge_id}/approve",
    summary="Approve a purge request: a second security officer, never the one who requested it",
    response_model=PurgeOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def approve_purge(
    purge_id: str,
    principal: PurgeOfficer,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> PurgeOut:
    purge, _ = await service.approve_purge(
        session,
        ctx=ctx,
        principal=principal,
        purge_id=purge_id,
        # The purge's id is the request: the same key for another purge is another request (409).
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="retention.purge_approve", body={"purge_id": purge_id}
        ),
    )
    return PurgeOut.model_validate(purge)


@router.get(
    "/purges",
    summary="Purge requests, oldest first",
    response_model=Page[PurgeOut],
    responses=problem_responses(401, 403, 422),
)
async def purges(
    principal: RetentionReader, session: DbSession, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[PurgeOut]:
    rows, next_cursor = await service.list_purges(session, principal=principal, limit=limit, cursor=cursor)
    return Page[PurgeOut](items=[PurgeOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/deletions",
    summary="Deletion records (RT-1), oldest first",
    response_model=Page[DeletionOut],
    responses=problem_responses(401, 403, 422),
)
async def deletions(
    principal: RetentionReader, session: DbSession, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[DeletionOut]:
    rows, next_cursor = await service.list_deletions(session, principal=principal, limit=limit, cursor=cursor)
    return Page[DeletionOut](items=[DeletionOut.model_validate(r) for r in rows], next_cursor=next_cursor)
