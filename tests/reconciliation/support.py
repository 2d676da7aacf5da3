"""Helpers for reconciliation tests: inquiries through the gateway, entries made directly at the center."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from app.audit.ledger import SYSTEM_ACTOR
from app.center.record_file import read_record_file
from app.context import AppContext
from app.demo import DemoCredentials
from app.reconciliation import service
from tests.inquiry.support import a1, as_user, center_record, draft_body, sim_client

DAY = {"from": "2026-11-24", "to": "2026-11-24"}


async def sent_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, subject: dict[str, Any], operator: str = "op001"
) -> dict[str, Any]:
    """An inquiry sent through the gateway with method A1; the center has answered when this returns."""
    headers = await as_user(client, demo, operator)
    confirmer = "cf001" if operator == "op001" else "cf002"
    created = await client.post(
        "/inquiries", json=draft_body(subject, approval=a1(demo, confirmer)), headers=headers
    )
    assert created.status_code == 201, created.text
    inquiry = created.json()
    assert inquiry["status"] == "held", inquiry
    return dict(inquiry)


async def cancel_with_approval_number(
    client: httpx.AsyncClient, ctx: AppContext, demo: DemoCredentials, inquiry: dict[str, Any]
) -> None:
    """CC-1 done right: the operator cancels with a confirmer's approval number; wait for the center."""
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    number = (
        await client.post(f"/inquiries/{inquiry['id']}/approval-numbers", json={}, headers=confirmer)
    ).json()["approval_number"]
    cancelled = await client.post(
        f"/inquiries/{inquiry['id']}/cancel",
        headers=operator,
        json={"reason": "入力誤り", "approval": {"method": "approval_number", "approval_number": number}},
    )
    assert cancelled.status_code == 200, cancelled.text
    for _ in range(100):
        if any(e["kind"] == "cancellation" for e in await center_record(ctx)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cancellation never reached the center")


async def direct_entry(
    ctx: AppContext,
    subject: dict[str, Any],
    *,
    at: datetime,
    kind: str = "inquiry",
    center_inquiry_id: str | None = None,
    terminal_id: str = "CENTER-T9",
) -> dict[str, Any]:
    """An entry made at the center's own terminal, bypassing the gateway."""
    body: dict[str, Any] = {
        "kind": kind,
        "member_code": ctx.settings.center_member_code,
        "branch_code": "001",
        "terminal_id": terminal_id,
        "operator_ref": "op001",
        "purpose": "new_credit",
        "subject": {"name_kana": subject["name_kana"], "birth_date": subject["birth_date"]},
        "at": at.isoformat(),
    }
    if center_inquiry_id is not None:
        body["center_inquiry_id"] = center_inquiry_id
    async with sim_client(ctx) as sim:
        response = await sim.post("/center/v1/_sim/direct-inquiries", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def reconcile(
    client: httpx.AsyncClient, demo: DemoCredentials, user_id: str = "auditor", period: dict[str, str] = DAY
) -> dict[str, Any]:
    headers = await as_user(client, demo, user_id)
    response = await client.post("/reconciliation/center", json=period, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def reconcile_file(ctx: AppContext, record_file: Path) -> tuple[Any, Any]:
    """Reconcile the test day against a center record file (``shokai reconcile center --file``): the run
    and its view with the findings."""
    day = date.fromisoformat(DAY["from"])
    run = await service.reconcile_center(
        ctx,
        actor=SYSTEM_ACTOR,
        date_from=day,
        date_to=day,
        entries=read_record_file(record_file),
        source="file",
    )
    return run, await service.run_view(ctx, run_id=run.id)
