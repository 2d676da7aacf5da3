"""Health endpoints are anonymous and answer truthfully; /metrics carries no personal data."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from app.center.http_adapter import HttpCenterLink
from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import auth_headers, login, user


async def test_healthz_and_readyz_answer_without_login(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    root = await client.get("http://testserver/healthz")
    assert root.status_code == 200


async def test_readyz_reports_an_unreachable_database(client: httpx.AsyncClient, ctx: AppContext) -> None:
    unreachable = (
        "sqlite+aiosqlite:////nonexistent-dir/shokai.db"
        if ctx.db.dialect == "sqlite"
        else "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    )
    engine = create_async_engine(unreachable)
    ctx.db.read_sessionmaker.configure(bind=engine)
    try:
        response = await client.get("/readyz")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_metrics_count_logins_and_hold_no_personal_data(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    await login(client, demo, "op001")
    await login(client, demo, "op001", password="wrong-password-1")
    await auth_headers(client, demo, "auditor")
    text = (await client.get("/metrics")).text
    assert 'shokai_logins_total{outcome="success"} 2.0' in text
    assert 'shokai_logins_total{outcome="invalid_credentials"} 1.0' in text
    assert "shokai_audit_ledger_head_seq" in text
    for entry in demo.users:
        assert entry["password"] not in text
        assert entry["name"] not in text
        assert f'"{entry["id"]}"' not in text
    assert user(demo, "op001")["id"] not in text


async def test_readyz_reports_a_failing_center_link_without_taking_the_gateway_out_of_service(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """With the center down the gateway still takes drafts and queues inquiries (the outbox), so it
    stays ready; the link's state is reported for monitoring to alert on."""
    assert (await client.get("/readyz")).json() == {"status": "ok", "database": "ok", "center_link": "closed"}
    link = ctx.center
    assert isinstance(link, HttpCenterLink)
    for _ in range(link.settings.breaker_failure_threshold):
        link.breaker.record_failure()

    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "center_link": "open"}
