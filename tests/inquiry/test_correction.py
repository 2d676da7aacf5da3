"""CC-1 correction of a sent inquiry's record: the same two-person control as a cancellation, only the
purpose and the consent document, the corrected purpose recorded at the center, and nothing refused
ever reaching the center (checked against the simulator's own inquiry record)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import select

from app.center.simulator import simulator_state
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.inquiry.models import OutboxMessage
from tests.helpers import ledger_events
from tests.inquiry.support import a1, as_user, center_record, draft_body, person, sim_client

NEW_DOCUMENT = {"type": "loan_application", "reference": "LA-2026-000999", "obtained_on": "2026-11-20"}


async def held_inquiry(client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext) -> dict[str, Any]:
    operator = await as_user(client, demo, "op001")
    created = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "held"
    return dict(created.json())


async def corrections_at_center(ctx: AppContext, *, wait_for: int = 0) -> list[dict[str, Any]]:
    """The correction entries of the center's own record; waits until ``wait_for`` of them are there."""
    for _ in range(100):
        entries = [e for e in await center_record(ctx) if e["kind"] == "correction"]
        if len(entries) >= wait_for:
            return entries
        await asyncio.sleep(0.05)
    raise AssertionError("the correction never reached the center")


async def number_for(
    client: httpx.AsyncClient, demo: DemoCredentials, inquiry_id: str, body: dict[str, Any]
) -> str:
    confirmer = await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{inquiry_id}/approval-numbers", json=body, headers=confirmer)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["approval_number"])


def by_number(number: str) -> dict[str, str]:
    return {"method": "approval_number", "approval_number": number}


async def test_a_correction_needs_a_second_persons_approval_of_exactly_that_correction(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await held_inquiry(client, demo, ctx)
    operator = await as_user(client, demo, "op001")
    url = f"/inquiries/{inquiry['id']}/correct"
    wanted = {"purpose": "guarantor", "consent_document": {**NEW_DOCUMENT, "type": "ledger"}}

    no_approval = await client.post(
        url, json={"reason": "目的入力誤り", "corrections": wanted}, headers=operator
    )
    assert no_approval.status_code == 422
    by_oneself = await client.post(
        url,
        json={"reason": "目的入力誤り", "corrections": wanted, "approval": a1(demo, "op001")},
        headers=operator,
    )
    assert by_oneself.status_code == 403 and by_oneself.json()["code"] == "SAME_PERSON"
    # A number issued to cancel the inquiry does not approve a correction,
    cancel_number = await number_for(client, demo, inquiry["id"], {})
    with_cancel_number = await client.post(
        url,
        json={"reason": "目的入力誤り", "corrections": wanted, "approval": by_number(cancel_number)},
        headers=operator,
    )
    assert with_cancel_number.json()["code"] == "APPROVAL_INVALID"
    # nor does a number the confirmer issued for another correction.
    other = {
        "purpose": "guarantor",
        "consent_document": {**NEW_DOCUMENT, "type": "principal_loan_application"},
    }
    other_number = await number_for(client, demo, inquiry["id"], {"correction": other})
    with_other_number = await client.post(
        url,
        json={"reason": "目的入力誤り", "corrections": wanted, "approval": by_number(other_number)},
        headers=operator,
    )
    assert with_other_number.json()["code"] == "APPROVAL_INVALID"
    assert await corrections_at_center(ctx) == []  # nothing refused reached the center

    number = await number_for(client, demo, inquiry["id"], {"correction": wanted})
    corrected = await client.post(
        url,
        json={"reason": "目的入力誤り", "corrections": wanted, "approval": by_number(number)},
        headers=operator,
    )
    assert corrected.status_code == 200, corrected.text
    body = corrected.json()
    # The inquiry stays as it was sent and approved; the correction is a record of its own.
    assert body["purpose"] == "new_credit" and body["consent_document"]["reference"] == "LA-2026-000123"
    assert body["correction"]["changes"]["consent_document"][1]["reference"] == "LA-2026-000999"
    assert "corrected" in body["flags"] and body["status"] == "held"
    assert body["correction"]["confirmer_id"] == "cf001" and body["correction"]["at_center"] is True
    assert body["correction"]["changes"]["purpose"] == ["new_credit", "guarantor"]

    [entry] = await corrections_at_center(ctx, wait_for=1)
    assert entry["center_inquiry_id"] == inquiry["center"]["inquiry_id"]
    assert entry["purpose"] == "guarantor" and entry["via"] == "gateway"
    [event] = await ledger_events(ctx, action="inquiry.corrected")
    details = json.loads(event.details)
    assert (event.actor_id, details["confirmer_id"], details["fields"]) == (
        "op001",
        "cf001",
        ["consent_document", "purpose"],
    )
    assert "LA-2026-000999" not in event.details  # the document number is personal data
    assert await ledger_events(ctx, action="center.correction_sent")

    # One correction per record: a record wrong again is cancelled and inquired anew.
    again = await client.post(
        url,
        json={"reason": "再訂正", "corrections": {"purpose": "new_credit"}, "approval": a1(demo)},
        headers=operator,
    )
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"
    assert len(await corrections_at_center(ctx)) == 1


async def test_what_a_correction_may_not_change_is_refused_and_never_reaches_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await held_inquiry(client, demo, ctx)
    operator = await as_user(client, demo, "op001")
    url = f"/inquiries/{inquiry['id']}/correct"

    async def attempt(corrections: dict[str, Any]) -> httpx.Response:
        return await client.post(
            url, json={"reason": "訂正", "corrections": corrections, "approval": a1(demo)}, headers=operator
        )

    # The subject (another person would be another inquiry) and the customer status are not fields.
    subject = await attempt({"subject": {"name_kana": "ヤマダタロウ", "birth_date": "1980-01-01"}})
    assert subject.status_code == 422 and subject.json()["code"] == "VALIDATION_ERROR"
    status = await attempt({"customer_status": "existing"})
    assert status.status_code == 422 and status.json()["code"] == "VALIDATION_ERROR"
    # A purpose the center answers with another part of the record is another inquiry.
    scope = await attempt({"purpose": "gazette_check"})
    assert scope.status_code == 422 and scope.json()["code"] == "VALIDATION_ERROR"
    # The corrected record must still pass the purpose table (PL-2).
    document = await attempt({"consent_document": {**NEW_DOCUMENT, "type": "ledger"}})
    assert document.json()["code"] == "DOCUMENT_NOT_ALLOWED_FOR_PURPOSE"
    unknown = await attempt({"purpose": "marketing"})
    assert unknown.json()["code"] == "PURPOSE_UNKNOWN"
    after = await attempt({"consent_document": {**NEW_DOCUMENT, "obtained_on": "2026-12-31"}})
    assert after.json()["code"] == "VALIDATION_ERROR"
    nothing = await attempt({"purpose": "new_credit"})
    assert nothing.json()["code"] == "VALIDATION_ERROR"
    # Only the operator who entered the inquiry corrects it (with a confirmer's approval).
    someone_else = await client.post(
        url,
        json={"reason": "訂正", "corrections": {"consent_document": NEW_DOCUMENT}, "approval": a1(demo)},
        headers=await as_user(client, demo, "hqop"),
    )
    assert someone_else.status_code == 403

    # A draft is changed, not corrected; and nothing refused got to the center.
    draft = (
        await client.post("/inquiries", json=draft_body(await person(ctx, index=1)), headers=operator)
    ).json()
    not_sent = await client.post(
        f"/inquiries/{draft['id']}/correct",
        json={"reason": "訂正", "corrections": {"consent_document": NEW_DOCUMENT}, "approval": a1(demo)},
        headers=operator,
    )
    assert not_sent.status_code == 409 and not_sent.json()["code"] == "INVALID_STATE"
    assert await corrections_at_center(ctx) == []
    assert await ledger_events(ctx, action="inquiry.corrected") == []


async def test_a_consent_document_correction_stays_at_the_gateway_and_a_key_replays_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await held_inquiry(client, demo, ctx)
    operator = await as_user(client, demo, "op001")
    body = {"reason": "書類番号誤り", "corrections": {"consent_document": NEW_DOCUMENT}, "approval": a1(demo)}
    keyed = {**operator, "Idempotency-Key": "correct-0001-abcdef"}

    first = await client.post(f"/inquiries/{inquiry['id']}/correct", json=body, headers=keyed)
    assert first.status_code == 200, first.text
    assert first.json()["correction"]["at_center"] is False
    replay = await client.post(f"/inquiries/{inquiry['id']}/correct", json=body, headers=keyed)
    assert replay.status_code == 200 and replay.json()["correction"] == first.json()["correction"]
    other = await client.post(
        f"/inquiries/{inquiry['id']}/correct",
        json={**body, "reason": "別の理由"},
        headers=keyed,
    )
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"

    assert len(await ledger_events(ctx, action="inquiry.corrected")) == 1
    # The center holds no consent document: nothing to correct there.
    await asyncio.sleep(0.2)
    assert await corrections_at_center(ctx) == []
    shown = (await client.get(f"/inquiries/{inquiry['id']}", headers=operator)).json()
    assert "corrected" in shown["flags"] and shown["consent_document"]["reference"] == "LA-2026-000123"
    assert shown["correction"]["changes"] == {
        "consent_document": [
            {"type": "loan_application", "reference": "LA-2026-000123", "obtained_on": "2026-11-10"},
            NEW_DOCUMENT,
        ]
    }
    assert shown["correction"]["corrected_by"] == "op001" and shown["correction"]["confirmer_id"] == "cf001"


async def test_a_cancellation_never_overtakes_a_correction_still_waiting_for_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """An inquiry's messages reach the center in the order they were written. A correction that met a
    center outage waits for its retry; a cancellation approved meanwhile must wait behind it — sent
    first, the center would refuse to correct a cancelled inquiry and the correction would be lost."""
    inquiry = await held_inquiry(client, demo, ctx)
    operator = await as_user(client, demo, "op001")
    async with sim_client(ctx) as sim:
        assert (await sim.post("/center/v1/_sim/faults", json={"error_rate": 1.0})).status_code == 200
    corrected = await client.post(
        f"/inquiries/{inquiry['id']}/correct",
        json={
            "reason": "目的入力誤り",
            "corrections": {"purpose": "guarantor", "consent_document": {**NEW_DOCUMENT, "type": "ledger"}},
            "approval": a1(demo),
        },
        headers=operator,
    )
    assert corrected.status_code == 200, corrected.text
    for _ in range(200):  # the background sender has tried and put the correction back for later
        async with ctx.db.read_session() as session:
            waiting = await session.scalar(
                select(OutboxMessage).where(
                    OutboxMessage.inquiry_id == inquiry["id"], OutboxMessage.kind == "correct"
                )
            )
        if waiting is not None and waiting.last_error is not None:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the correction was never tried")
    async with sim_client(ctx) as sim:
        assert (await sim.delete("/center/v1/_sim/faults")).status_code == 204

    cancelled = await client.post(
        f"/inquiries/{inquiry['id']}/cancel",
        json={"reason": "入力誤り", "approval": a1(demo)},
        headers=operator,
    )
    assert cancelled.status_code == 200, cancelled.text
    await asyncio.sleep(0.3)  # the sender was kicked by the cancellation: it must not send it yet
    assert [e["kind"] for e in await center_record(ctx)] == ["inquiry"]

    clock.advance(minutes=10)  # the correction's retry is due
    ctx.outbox_kick()
    for _ in range(200):
        kinds = [e["kind"] for e in await center_record(ctx)]
        if len(kinds) == 3:
            break
        await asyncio.sleep(0.05)
    assert kinds == ["inquiry", "correction", "cancellation"]
    for _ in range(200):  # the center records a call before the gateway stores that it was delivered
        async with ctx.db.read_session() as session:
            messages = (
                await session.scalars(select(OutboxMessage).where(OutboxMessage.inquiry_id == inquiry["id"]))
            ).all()
        if all(m.delivered_at is not None for m in messages):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("a message was never marked delivered")
    last_errors = {m.kind: m.last_error for m in messages}
    assert "unavailable" in (last_errors["correct"] or "") and last_errors["cancel"] is None


async def test_a_correction_the_center_refuses_is_escalated_to_the_branch_manager_and_hq(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await held_inquiry(client, demo, ctx)
    # Cancelled at the center's own desk meanwhile: the center will not correct a cancelled record.
    simulator_state(ctx.center_simulator).center.cancel(inquiry["center"]["inquiry_id"], idempotency_key=None)
    operator = await as_user(client, demo, "op001")
    wanted = {"purpose": "guarantor", "consent_document": {**NEW_DOCUMENT, "type": "ledger"}}
    number = await number_for(client, demo, inquiry["id"], {"correction": wanted})
    corrected = await client.post(
        f"/inquiries/{inquiry['id']}/correct",
        json={"reason": "目的入力誤り", "corrections": wanted, "approval": by_number(number)},
        headers=operator,
    )
    assert corrected.status_code == 200, corrected.text

    for _ in range(100):
        refused = await ledger_events(ctx, action="center.refused")
        if refused:
            break
        await asyncio.sleep(0.05)
    [event] = refused
    details = json.loads(event.details)
    assert (event.object_id, details["kind"]) == (inquiry["id"], "correct")
    assert details["code"] == "CENTER_CANCELLED"
    async with ctx.db.read_session() as session:
        escalations = list((await session.scalars(select(Escalation))).all())
    assert [(e.kind, e.branch_code, e.object_id, e.recipients, e.note) for e in escalations] == [
        (
            "center_refused_correction",
            "001",
            inquiry["id"],
            ["branch_manager", "hq_compliance"],
            "CENTER_CANCELLED",
        )
    ]
    assert details["escalation_id"] == escalations[0].id
    assert await corrections_at_center(ctx) == []  # the center's record has no correction
