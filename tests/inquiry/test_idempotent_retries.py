"""A retry with the same Idempotency-Key returns the first result, also while the first is still running.

A terminal that times out sends the same request again at once, so the retry often arrives before the
first request has committed. On PostgreSQL the two run side by side: the create's loser meets the key's
unique row, the submit's and the cancel's wait on the inquiry's row lock. Either way the retry must answer
as the first did, and the center must hear of the inquiry once.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import IdempotencyRecord
from tests.inquiry.support import (
    a1,
    as_user,
    center_record,
    center_record_once_sent,
    center_record_when_nothing_waits,
    draft_body,
    person,
)

RETRIES = 3


def answers(responses: list[httpx.Response]) -> list[tuple[int, Any]]:
    return [(r.status_code, r.json().get("id") or r.json().get("code")) for r in responses]


async def test_retries_of_a_create_sent_together_all_get_the_first_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = {**await as_user(client, demo, "op001"), "Idempotency-Key": "T001-create-000001"}
    body = draft_body(await person(ctx), approval=a1(demo))

    sent = await asyncio.gather(
        *(client.post("/inquiries", json=body, headers=operator) for _ in range(RETRIES))
    )

    ids = {r.json().get("id") for r in sent}
    assert [r.status_code for r in sent] == [201] * RETRIES, answers(sent)
    assert len(ids) == 1
    assert [entry["idempotency_key"] for entry in await center_record(ctx)] == list(ids)


async def test_retries_of_a_submit_sent_together_all_get_the_sent_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    plain = await as_user(client, demo, "op001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=plain)).json()
    operator = {**plain, "Idempotency-Key": "T001-submit-000001"}
    url = f"/inquiries/{draft['id']}/submit"

    sent = await asyncio.gather(
        *(client.post(url, json={"approval": a1(demo)}, headers=operator) for _ in range(RETRIES))
    )

    assert [r.status_code for r in sent] == [200] * RETRIES, answers(sent)
    assert {r.json()["id"] for r in sent} == {draft["id"]}
    # The center answers at once, so every retry can answer with it too: a retry waiting for the
    # answer must not keep the delivery from storing it (it held the writer or row lock meanwhile).
    assert [r.json()["status"] for r in sent] == ["held"] * RETRIES
    assert len(await center_record(ctx)) == 1


async def test_retries_of_a_cancel_sent_together_all_get_the_cancelled_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    plain = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=a1(demo))
    held = (await client.post("/inquiries", json=body, headers=plain)).json()
    operator = {**plain, "Idempotency-Key": "T001-cancel-000001"}
    cancellation = {"reason": "入力誤り", "approval": a1(demo)}
    url = f"/inquiries/{held['id']}/cancel"

    sent = await asyncio.gather(
        *(client.post(url, json=cancellation, headers=operator) for _ in range(RETRIES))
    )

    assert [r.status_code for r in sent] == [200] * RETRIES, answers(sent)
    assert {r.json()["status"] for r in sent} == {"cancelled"}


async def test_one_key_sent_for_two_drafts_at_once_sends_one_and_refuses_the_other(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A terminal that reuses a key for another inquiry while the first is in flight: on PostgreSQL both
    run side by side and the loser meets the key's row at commit. It is told the key was reused (409),
    never answered with the inquiry its rolled-back transaction had changed (that was a 500)."""
    plain = await as_user(client, demo, "op001")
    drafts = [
        (await client.post("/inquiries", json=draft_body(await person(ctx, index=i)), headers=plain)).json()
        for i in range(2)
    ]
    operator = {**plain, "Idempotency-Key": "T001-submit-reused-1"}

    sent = await asyncio.gather(
        *(
            client.post(f"/inquiries/{draft['id']}/submit", json={"approval": a1(demo)}, headers=operator)
            for draft in drafts
        )
    )

    assert sorted(answers(sent), key=lambda a: a[0])[1] == (409, "IDEMPOTENCY_KEY_REUSED"), answers(sent)
    assert sorted(r.status_code for r in sent) == [200, 409]
    winner = next(r.json() for r in sent if r.status_code == 200)
    recorded = await center_record_once_sent(ctx)
    assert [entry["idempotency_key"] for entry in recorded] == [winner["id"]]
    loser = next(d for d in drafts if d["id"] != winner["id"])
    shown = await client.get(f"/inquiries/{loser['id']}", headers=plain)
    assert shown.json()["status"] == "awaiting_approval"  # nothing of the refused submit was kept


async def test_one_key_sent_to_cancel_two_inquiries_at_once_cancels_one(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    plain = await as_user(client, demo, "op001")
    held = [
        (
            await client.post(
                "/inquiries", json=draft_body(await person(ctx, index=i), approval=a1(demo)), headers=plain
            )
        ).json()
        for i in range(2)
    ]
    operator = {**plain, "Idempotency-Key": "T001-cancel-reused-1"}
    cancellation = {"reason": "入力誤り", "approval": a1(demo)}

    sent = await asyncio.gather(
        *(client.post(f"/inquiries/{h['id']}/cancel", json=cancellation, headers=operator) for h in held)
    )

    assert sorted(answers(sent), key=lambda a: a[0])[1] == (409, "IDEMPOTENCY_KEY_REUSED"), answers(sent)
    statuses = [(await client.get(f"/inquiries/{h['id']}", headers=plain)).json()["status"] for h in held]
    assert sorted(statuses) == ["cancelled", "held"]
    # The center cancelled the one the gateway shows cancelled, and nothing else.
    cancelled = next(h for h, status in zip(held, statuses, strict=True) if status == "cancelled")
    recorded = await center_record_when_nothing_waits(ctx)
    assert [e["center_inquiry_id"] for e in recorded if e["kind"] == "cancellation"] == [
        cancelled["center"]["inquiry_id"]
    ]


async def test_the_stored_fingerprint_reveals_nothing_of_the_confirmers_password(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """AU-9: with a copy of the database and the rest of the body (all of it readable from the inquiry),
    a bare hash of the request would confirm a guessed password offline. The fingerprint is keyed."""
    operator = {**await as_user(client, demo, "op001"), "Idempotency-Key": "T001-create-000002"}
    body = draft_body(await person(ctx), approval=a1(demo))
    assert (await client.post("/inquiries", json=body, headers=operator)).status_code == 201

    async with ctx.db.read_session() as session:
        stored = await session.scalar(select(IdempotencyRecord.request_hash))
    guessed = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert stored is not None
    assert stored != guessed
    again = await client.post("/inquiries", json=body, headers=operator)
    assert again.status_code == 201
    other = {**body, "approval": {**a1(demo), "confirmer_password": "a-different-guess"}}
    assert (await client.post("/inquiries", json=other, headers=operator)).json()["code"] == (
        "IDEMPOTENCY_KEY_REUSED"
    )


async def test_any_non_empty_key_is_taken_and_an_empty_one_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    # api.md sets no length: a terminal numbering its requests "1", "2", ... is served.
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    first = await client.post("/inquiries", json=body, headers={**operator, "Idempotency-Key": "7"})
    again = await client.post("/inquiries", json=body, headers={**operator, "Idempotency-Key": "7"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    empty = await client.post("/inquiries", json=body, headers={**operator, "Idempotency-Key": ""})
    assert empty.status_code == 422 and empty.json()["code"] == "VALIDATION_ERROR"
