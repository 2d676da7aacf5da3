"""The guarded inquiry's whole life (methods A and B): draft → approval → center → held → release → read."""

from __future__ import annotations

import httpx

from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.subject import normalise_kana
from tests.helpers import ledger_events
from tests.inquiry.support import as_user, center_record, draft_body, password_of, person


async def test_life_with_an_approval_number(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    subject = await person(ctx)
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    releaser = await as_user(client, demo, "cf001b")

    created = await client.post("/inquiries", json=draft_body(subject), headers=operator)
    assert created.status_code == 201, created.text
    inquiry = created.json()
    assert inquiry["status"] == "awaiting_approval"
    assert inquiry["number"].startswith("001-20261124-")
    assert inquiry["subject"]["name_kana"] == normalise_kana(subject["name_kana"])
    assert await center_record(ctx) == []

    issued = await client.post(f"/inquiries/{inquiry['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text
    number = issued.json()["approval_number"]

    submitted = await client.post(
        f"/inquiries/{inquiry['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": number}},
        headers=operator,
    )
    assert submitted.status_code == 200, submitted.text
    # The interactive submit waits for the center's answer.
    state = submitted.json()
    assert state["status"] == "held"
    assert state["approval"]["method"] == "approval_number"
    assert state["approval"]["confirmer_id"] == "cf001"
    assert state["response"]["state"] == "held"

    held = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert held.status_code == 423
    assert held.json()["code"] == "RESPONSE_HELD"
    assert "record" not in held.text

    released = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
        headers=releaser,
    )
    assert released.status_code == 200, released.text
    record = released.json()["record"]
    assert record["result"] == "found"
    assert normalise_kana(record["record"]["identity"]["name_kana"]) == normalise_kana(subject["name_kana"])

    read = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert read.status_code == 200
    assert read.headers["cache-control"] == "no-store"
    reads = [
        e for e in await ledger_events(ctx, action="inquiry.response_read") if e.object_id == inquiry["id"]
    ]
    assert [e.actor_id for e in reads] == ["cf001b", "op001"]

    entries = await center_record(ctx)
    assert len(entries) == 1
    assert entries[0]["idempotency_key"] == inquiry["id"]


async def test_life_with_confirmer_credentials_sends_at_once(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    subject = await person(ctx, index=1)
    operator = await as_user(client, demo, "op001")
    body = draft_body(
        subject,
        approval={
            "method": "confirmer_credentials",
            "confirmer_user_id": "cf001",
            "confirmer_password": password_of(demo, "cf001"),
        },
    )
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201, created.text
    state = created.json()
    assert state["status"] == "held"
    assert state["approval"] == {
        "method": "confirmer_credentials",
        "confirmer_id": "cf001",
        "approved_at": state["approval"]["approved_at"],
    }
    assert len(await center_record(ctx)) == 1
