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
from tests.inquiry.support import as_user, center_record, draft_body, password_of, person

RETRIES = 3


def a1(demo: DemoCredentials) -> dict[str, str]:
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }


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
