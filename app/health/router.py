"""``/healthz`` (process up), ``/readyz`` (database reachable), ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from app.deps import Context
from app.monitoring.gauges import refresh_gauges

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
    await refresh_gauges(ctx)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
