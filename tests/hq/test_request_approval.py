"""A confirmer's A1 approval of a branch's request to HQ is judged exactly as an inquiry's A1 approval:
an emergency switch on the confirmer, an expired password or a missing second factor (where the
branch's policy asks for one) refuse it, and nothing is asked of HQ."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance.totp import code_at
from app.hq.models import HqRequest
from tests.governance.support import enrol_totp
from tests.helpers import ledger_events
from tests.inquiry.support import a1, as_user, draft_body, person
from tests.inquiry.test_confirmer_in_force import expire_password, throw_user_switch


async def requests_in_database(ctx: AppContext) -> int:
    async with ctx.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(HqRequest)) or 0)


async def test_a_confirmer_under_an_emergency_switch_cannot_approve_a_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    op002 = await as_user(client, demo, "op002")
    await throw_user_switch(client, demo, clock, "cf002")

    asked = await client.post(
        "/hq-requests", json=draft_body(await person(ctx), approval=a1(demo, "cf002")), headers=op002
    )

    assert asked.status_code == 403 and asked.json()["code"] == "SUSPENDED", asked.text
    assert await requests_in_database(ctx) == 0


async def test_a_confirmer_whose_password_has_expired_cannot_approve_a_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    await expire_password(ctx, clock, "cf002")
    op002 = await as_user(client, demo, "op002")

    asked = await client.post(
        "/hq-requests", json=draft_body(await person(ctx), approval=a1(demo, "cf002")), headers=op002
    )

    assert asked.status_code == 403 and asked.json()["code"] == "APPROVAL_INVALID", asked.text
    assert await requests_in_database(ctx) == 0
    [refusal] = await ledger_events(ctx, action="hq_request.approval_refused")
    assert refusal.outcome == "denied" and '"PASSWORD_EXPIRED"' in refusal.details


@pytest.mark.parametrize("code", ["missing", "wrong"])
async def test_a_request_needs_the_confirmers_code_where_the_branch_policy_asks_for_it(
    code: str, client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    ctx.policy = ctx.policy.model_copy(update={"confirmer_totp_branches": ["002"]})
    secret = await enrol_totp(client, await as_user(client, demo, "cf002"), clock)
    op002 = await as_user(client, demo, "op002")
    subject = await person(ctx)
    good = code_at(secret, clock.now())
    approval = a1(demo, "cf002")
    if code == "wrong":
        approval["confirmer_totp"] = f"{(int(good) + 1) % 1_000_000:06d}"

    refused = await client.post("/hq-requests", json=draft_body(subject, approval=approval), headers=op002)

    assert refused.status_code == 403 and refused.json()["code"] == "APPROVAL_INVALID", refused.text
    assert await requests_in_database(ctx) == 0
    [refusal] = await ledger_events(ctx, action="hq_request.approval_refused")
    assert '"TOTP_REQUIRED"' in refusal.details
    # A wrong code is a guess and counts toward the confirmer's lockout; a missing one only refuses.
    failures = await ledger_events(ctx, action="auth.login_failed")
    assert len(failures) == (1 if code == "wrong" else 0)

    approved = await client.post(
        "/hq-requests",
        json=draft_body(subject, approval={**a1(demo, "cf002"), "confirmer_totp": good}),
        headers=op002,
    )
    assert approved.status_code == 201, approved.text
    [listed] = (await client.get("/hq-requests", headers=op002)).json()["items"]
    assert listed["id"] == approved.json()["id"] and listed["approval"]["confirmer_id"] == "cf002"
