"""``/healthz`` (process up), ``/readyz`` (database and center link), ``/metrics`` (Prometheus text)."""

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


@router.get(
    "/readyz",
    summary="The database answers; the center link's state",
    responses={503: {"description": "Not ready"}},
)
async def readyz(ctx: Context) -> JSONResponse:
    # Only the database decides readiness. With the center down the gateway still takes drafts,
    # approvals, releases and list checks, and queues inquiries in the outbox until the center is back
    # (ER-3): a probe that failed then would take every gateway out of service for the branches. The
    # link's state is reported ("degraded") for monitoring to alert on.
    center_link = str(ctx.center.state)
    try:
        async with ctx.db.read_session() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "center_link": center_link},
            status_code=503,
        )
    status = "ok" if center_link == "closed" else "degraded"
    return JSONResponse({"status": status, "database": "ok", "center_link": center_link})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Context) -> Response:
    await refresh_gauges(ctx)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
