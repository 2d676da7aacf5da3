"""A confirmer's approval counts only while their right to approve is in force (methods A1 and A2).

An approval number carries its issuer's approval until it is used, so a suspension, a revoked confirmer
role or an emergency switch between the issue and the use stops it; A1 refuses a confirmer under an
emergency switch or with an expired password. A refused A1 at ``POST /inquiries`` writes no draft.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from app.authz.models import User, UserRole
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import ApprovalNumber, Inquiry
from tests.governance.support import privileged_headers
from tests.helpers import ledger_events, ledger_text, login
from tests.inquiry.support import a1, as_user, center_record, draft_body, password_of, person


async def throw_user_switch(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, user_id: str
) -> None:
    officer = await privileged_headers(client, demo, clock, "secoff")
    thrown = await client.post(
        "/emergency/suspensions",
        json={"scope": "user", "target": user_id, "reason": "不正利用の疑い"},
        headers=officer,
    )
    assert thrown.status_code == 201, thrown.text


async def expire_password(ctx: AppContext, clock: ManualClock, user_id: str) -> None:
    """The user's password was last changed longer ago than the policy allows (AU-4)."""
    async with ctx.db.session() as session:
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_changed_at=clock.now() - timedelta(days=400))
        )
        await session.commit()


async def take_away_confirming(ctx: AppContext, clock: ManualClock, how: str) -> None:
    async with ctx.db.session() as session:
        if how == "suspended":  # what an HR leave event does to the account
            await session.execute(update(User).where(User.id == "cf001").values(status="suspended"))
        else:
            await session.execute(
                update(UserRole)
                .where(UserRole.user_id == "cf001")
                .values(revoked_at=clock.now(), revoked_by="adm001")
            )
        await session.commit()


async def inquiries_in_database(ctx: AppContext) -> int:
    async with ctx.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(Inquiry)) or 0)


@pytest.mark.parametrize("change", ["suspended", "role_revoked", "emergency_switch"])
async def test_a_number_stops_when_its_issuer_can_no_longer_confirm(
    change: str, client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    number = issued.json()["approval_number"]
    if change == "emergency_switch":
        await throw_user_switch(client, demo, clock, "cf001")
    else:
        await take_away_confirming(ctx, clock, change)

    used = await client.post(
        f"/inquiries/{draft['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": number}},
        headers=operator,
    )

    assert used.status_code == 403, used.text
    assert used.json()["code"] == "APPROVAL_INVALID"
    assert (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()["status"] == (
        "awaiting_approval"
    )
    assert await center_record(ctx) == []
    async with ctx.db.read_session() as session:
        row = await session.scalar(select(ApprovalNumber).where(ApprovalNumber.inquiry_id == draft["id"]))
    assert row is not None
    assert (row.state, row.void_reason) == ("voided", "confirmer_not_in_force")
    refusals = [e for e in await ledger_events(ctx, action="approval.refused") if e.object_id == draft["id"]]
    assert len(refusals) == 1


async def test_a_number_of_a_confirmer_still_in_force_is_used(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The check looks at the issuer, not at others: a switch on another confirmer changes nothing."""
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    await throw_user_switch(client, demo, clock, "cf001b")

    used = await client.post(
        f"/inquiries/{draft['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": issued.json()["approval_number"]}},
        headers=operator,
    )

    assert used.status_code == 200, used.text
    assert used.json()["approval"]["confirmer_id"] == "cf001"


async def test_a1_refuses_a_confirmer_under_an_emergency_switch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await as_user(client, demo, "op001")
    await throw_user_switch(client, demo, clock, "cf001")

    sent = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
    )

    assert sent.status_code == 403, sent.text
    assert sent.json()["code"] == "SUSPENDED"
    assert await center_record(ctx) == []
    assert await inquiries_in_database(ctx) == 0


async def test_a1_refuses_a_confirmer_whose_password_has_expired(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    await expire_password(ctx, clock, "cf001")
    assert (await login(client, demo, "cf001")).json()["must_change_password"] is True
    operator = await as_user(client, demo, "op001")

    sent = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
    )

    assert sent.status_code == 403, sent.text
    assert sent.json()["code"] == "APPROVAL_INVALID"
    assert await center_record(ctx) == []
    assert await inquiries_in_database(ctx) == 0
    refusal = (await ledger_events(ctx, action="approval.refused"))[-1]
    assert '"PASSWORD_EXPIRED"' in refusal.details


async def test_a_refused_a1_writes_no_draft_and_uses_no_number(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """ER-1: the refusal and the failed attempt are recorded, nothing else; the next inquiry still gets
    the day's first number."""
    operator = await as_user(client, demo, "op001")
    wrong = a1(demo, password="not-the-confirmers-password")

    refused = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=wrong), headers=operator
    )

    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "APPROVAL_INVALID"
    assert await inquiries_in_database(ctx) == 0
    assert await ledger_events(ctx, action="inquiry.created") == []
    assert len(await ledger_events(ctx, action="approval.refused")) == 1
    sent = await client.post(
        "/inquiries", json=draft_body(await person(ctx, index=1), approval=a1(demo)), headers=operator
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["number"].endswith("-0001")


async def test_what_is_typed_as_the_confirmers_id_reaches_the_ledger_only_when_it_names_a_confirmer(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """AU-5, LG-2: a confirmer who swaps the two fields, or an operator who types the customer's name as
    the confirmer's ID, left that password or name in the ledger for good. An ID that names nobody is
    recorded as its pseudonym (as at login); a known confirmer with a wrong password is still named."""
    subject = await person(ctx)
    operator = await as_user(client, demo, "op001")
    secret = password_of(demo, "cf001")
    attempts = [
        {"method": "confirmer_credentials", "confirmer_user_id": secret, "confirmer_password": "cf001"},
        {
            "method": "confirmer_credentials",
            "confirmer_user_id": subject["name_kanji"],
            "confirmer_password": "x",
        },
        {"method": "confirmer_credentials", "confirmer_user_id": "cf001", "confirmer_password": "not-it"},
    ]
    for approval in attempts:
        refused = await client.post(
            "/inquiries", json=draft_body(subject, approval=approval), headers=operator
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "APPROVAL_INVALID")
    recorded = await ledger_text(ctx)
    assert secret not in recorded and subject["name_kanji"] not in recorded
    named = [
        json.loads(e.details).get("confirmer_id") for e in await ledger_events(ctx, action="approval.refused")
    ]
    assert named == [None, None, "cf001"]
