"""When an outbox row goes out: a row the submit wrote claimed is sent by its own task only while the
claim is still its own; a row the circuit breaker kept back is due again when the breaker lets calls
through, not after a backoff grown by refusals that sent nothing.

The submitting request's delivery takes one of the sender's slots. With many submits at once, or a slow
center, the task can wait for a slot longer than the row's lease; another worker (PostgreSQL runs
several) then finds the row due and sends it. The waiting task must see that and leave the row, not
send it a second time under the same idempotency key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.center.http_adapter import HttpCenterLink
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import OutboxMessage
from app.inquiry.outbox import OutboxSender
from app.main import create_app
from tests.inquiry.support import (
    center_record,
    sim_client,
    submit_with_a1,
)


@pytest.fixture
def app(ctx: AppContext) -> Any:
    return create_app(context=ctx, background_tasks=False)  # the two workers below are driven by hand


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:
            yield http


async def test_a_submit_whose_task_waited_out_its_lease_leaves_the_row_to_the_worker_that_took_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    worker_a, worker_b = OutboxSender(ctx, concurrency=1), OutboxSender(ctx)
    ctx.outbox_deliver_claimed = worker_a.deliver_claimed  # this gateway's submits go to worker A
    ctx.policy = ctx.policy.model_copy(update={"interactive_submit_wait_seconds": 0.2})
    await worker_a._slots.acquire()  # worker A's one slot is busy with a slow delivery
    operator, submitted = await submit_with_a1(client, demo, ctx)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "queued"  # still waiting for worker A's slot

    clock.advance(seconds=ctx.settings.outbox_claim_lease_seconds + 1)
    assert await worker_b.deliver_due() == 1  # the lease ran out: worker B takes the row and sends it
    worker_a._slots.release()
    await asyncio.gather(*worker_a._in_flight.values())

    async with sim_client(ctx) as sim:
        stats = (await sim.get("/center/v1/_sim/stats")).json()
    assert (stats["inquiries_recorded"], stats["duplicates_suppressed"]) == (1, 0), stats
    assert len(await center_record(ctx)) == 1
    async with ctx.db.read_session() as session:
        message = await session.scalar(select(OutboxMessage))
    assert message is not None and message.delivered_at is not None and message.attempts == 2
    shown = await client.get(f"/inquiries/{submitted.json()['id']}", headers=operator)
    assert shown.json()["status"] == "held"


async def test_a_submit_whose_task_waited_long_but_kept_its_row_still_sends_it_once(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    worker_a = OutboxSender(ctx, concurrency=1)
    ctx.outbox_deliver_claimed = worker_a.deliver_claimed
    ctx.policy = ctx.policy.model_copy(update={"interactive_submit_wait_seconds": 0.2})
    await worker_a._slots.acquire()
    _, submitted = await submit_with_a1(client, demo, ctx)
    assert submitted.json()["status"] == "queued"

    clock.advance(seconds=ctx.settings.outbox_claim_lease_seconds * 0.9)  # nobody else took the row
    worker_a._slots.release()
    await asyncio.gather(*worker_a._in_flight.values())

    assert len(await center_record(ctx)) == 1
    async with ctx.db.read_session() as session:
        message = await session.scalar(select(OutboxMessage))
    assert message is not None and message.delivered_at is not None and message.attempts == 1


async def test_a_call_the_circuit_breaker_refused_is_no_attempt_and_goes_out_when_it_lets_calls_through(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    link = ctx.center
    assert isinstance(link, HttpCenterLink)
    for _ in range(link.settings.breaker_failure_threshold):
        link.breaker.record_failure()  # the center has been failing: the circuit is open
    worker = OutboxSender(ctx)
    ctx.outbox_deliver_claimed = worker.deliver_claimed
    operator, submitted = await submit_with_a1(client, demo, ctx)
    assert submitted.json()["status"] == "queued"
    async with ctx.db.read_session() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.attempts == 0  # nothing was sent
    cool_down = link.settings.breaker_cool_down_seconds
    assert row.next_attempt_at >= clock.now() + timedelta(seconds=cool_down * 0.9)

    clock.advance(seconds=cool_down / 2)
    assert await worker.deliver_due() == 0  # not hammered against the open circuit meanwhile

    clock.advance(seconds=cool_down / 2 + 6)  # the breaker lets a trial call through
    assert await worker.deliver_due() == 1
    async with ctx.db.read_session() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.delivered_at is not None and row.attempts == 1
    shown = await client.get(f"/inquiries/{submitted.json()['id']}", headers=operator)
    assert shown.json()["status"] == "held"
