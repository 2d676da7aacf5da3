"""``/healthz`` (process up), ``/readyz`` (database reachable), ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select, text

from app.audit.models import AuditChainHead
from app.deps import Context

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers", responses={503: {"description": "Not ready"}})
async def readyz(ctx: Context) -> JSONResponse:
    try:
        async with ctx.db.read_session() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Context) -> Response:
    async with ctx.db.read_session() as session:
        head = await session.scalar(select(AuditChainHead).where(AuditChainHead.id == 1))
    if head is not None:
        ctx.metrics.ledger_head_seq.set(head.seq)
        if head.last_checkpoint_at:
            last = datetime.fromisoformat(head.last_checkpoint_at.replace("Z", "+00:00"))
            ctx.metrics.checkpoint_age.set((ctx.clock.now() - last).total_seconds())
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
