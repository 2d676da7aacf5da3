"""kill -9 of the gateway with 100+ submits in flight loses nothing and sends nothing twice (ER-2, ER-3).

design.md "The center link and the outbox": submitting writes ``queued`` and an outbox row in one
transaction; a crash at any point leaves a row that is retried with the same center idempotency key.
Here that is tested the hard way: a real gateway process (``shokai serve``) talks to the simulator
process, whose deliberate latency keeps deliveries in flight; 150 operators' submits are fired at once
and the gateway is killed with SIGKILL in the middle of them, then started again.

What a bank's auditor checks afterwards:

* no inquiry is lost: every submit that was committed ends ``held`` (or ``center_error``), and a submit
  that was not committed leaves its draft ``awaiting_approval`` with its approval number unused, so the
  operator can send it again with the same number;
* the center's own inquiry record holds exactly one entry per sent inquiry — no duplicate for the
  deliveries that the crash cut off, none missing;
* each approval number was used at most once, and exactly once for each sent inquiry;
* the audit ledger's hash chain is intact.

PostgreSQL is the production shape; SQLite (the embedded default) is killed the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from tests.processes.support import (
    MEMBER_CODE,
    Desk,
    Gateway,
    GatewayDatabase,
    Simulator,
    process_env,
    wait_for_async,
)

# 100 must still be in flight at the kill on a loaded 2-core machine, where most of the first wave has
# already been answered: the margin is the 50 beyond it.
SUBMITS = 150
FIRST_WAVE = 30
FIRST_DAY_RUSH = 12
CENTER_LATENCY_MS = 300
# A delivery cut off by the kill stays claimed for this long, then is retried (production default: 120 s).
# The gateway only starts with a lease of at least twice its slowest center call, so the call's limits
# are cut down with it: 2 attempts × (1 + 1 + 2 s) + 0.2 s backoff = 8.2 s, twice that 16.4 s.
CLAIM_LEASE_SECONDS = 17
CENTER_LIMITS = {
    "SHOKAI_CENTER_CONNECT_TIMEOUT_SECONDS": "1",
    "SHOKAI_CENTER_WRITE_TIMEOUT_SECONDS": "1",
    "SHOKAI_CENTER_READ_TIMEOUT_SECONDS": "2",
    "SHOKAI_CENTER_MAX_ATTEMPTS": "2",
}
FINAL_STATES = {"held", "center_error"}


async def _prepare_drafts(desk: Desk, people: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Drafts by op001, each with an approval number from cf001: (inquiry id, approval number).

    The branch's first drafts of the day are entered all at once: they race to start the day's
    inquiry-number counter, and each must still get its own number (no 500, no gap).
    """
    slots = asyncio.Semaphore(6)

    async def one(subject: dict[str, Any], *, limited: bool = True) -> tuple[str, str, str]:
        if limited:
            async with slots:
                return await one(subject, limited=False)
        draft = await desk.draft("op001", subject)
        return draft["id"], await desk.approval_number("cf001", draft["id"]), draft["number"]

    await desk.login("op001")
    await desk.login("cf001")
    opening = await asyncio.gather(*(one(p, limited=False) for p in people[:FIRST_DAY_RUSH]))
    rest = await asyncio.gather(*(one(p) for p in people[FIRST_DAY_RUSH:]))
    numbers = [number for _, _, number in [*opening, *rest]]
    assert len(set(numbers)) == len(numbers), "two inquiries share a number"
    per_day: dict[str, list[int]] = {}
    for number in numbers:
        day, _, sequence = number.rpartition("-")
        per_day.setdefault(day, []).append(int(sequence))
    for sequences in per_day.values():
        assert sorted(sequences) == list(range(1, len(sequences) + 1)), "inquiry numbers have a gap"
    return [(inquiry_id, approval) for inquiry_id, approval, _ in [*opening, *rest]]


async def _kill_with_submits_in_flight(
    desk: Desk, gateway: Gateway, db: GatewayDatabase, simulator: Simulator, drafts: list[tuple[str, str]]
) -> dict[str, httpx.Response | BaseException]:
    """Fire every submit at once in two waves and SIGKILL the gateway in the middle of the second."""

    async def submit(inquiry_id: str, number: str) -> httpx.Response:
        return await desk.submit("op001", inquiry_id, number)

    first, second = drafts[:FIRST_WAVE], drafts[FIRST_WAVE:]
    tasks = {i: asyncio.create_task(submit(i, n)) for i, n in first}
    async with httpx.AsyncClient(timeout=5) as side:

        async def center_answering() -> bool:
            stats = (await side.get(f"{simulator.url}/center/v1/_sim/stats")).json()
            return int(stats["inquiries_recorded"]) >= 3

        # The first wave is being delivered: some answered and stored, more on the wire.
        await wait_for_async(center_answering, within=60, interval=0.02, what="the first deliveries")
    tasks.update({i: asyncio.create_task(submit(i, n)) for i, n in second})
    target = FIRST_WAVE + len(second) // 3

    async def second_wave_partly_committed() -> bool:
        sql = "SELECT count(*) FROM inquiries WHERE status <> 'awaiting_approval'"
        return int((await asyncio.to_thread(db.rows, sql))[0][0]) >= target

    # Kill with part of the second wave committed (queued) and the rest not yet: in flight are deliveries
    # the center may record while the gateway never hears back, queued inquiries, and uncommitted submits.
    await wait_for_async(second_wave_partly_committed, within=60, interval=0.02, what="the second wave")
    in_flight = sum(not t.done() for t in tasks.values())
    gateway.kill()
    outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert in_flight >= 100, f"only {in_flight} submits were in flight at the kill"
    return dict(zip(tasks, outcomes, strict=True))


async def test_kill_9_with_submits_in_flight_loses_nothing_and_duplicates_nothing(
    simulator: Simulator, gateway_db: GatewayDatabase
) -> None:
    env = process_env(
        SHOKAI_CENTER_URL=simulator.url,
        SHOKAI_OUTBOX_CLAIM_LEASE_SECONDS=str(CLAIM_LEASE_SECONDS),
        **CENTER_LIMITS,
        **gateway_db.env,
    )
    gateway = Gateway(gateway_db.gateway_root, env=env)
    people = simulator.people(SUBMITS)
    try:
        gateway.demo()
        gateway.start()
        limits = httpx.Limits(max_connections=SUBMITS + 20, max_keepalive_connections=SUBMITS + 20)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            desk = Desk(gateway, http)
            drafts = await _prepare_drafts(desk, people)
            numbers = dict(drafts)
            simulator.faults(latency_ms=CENTER_LATENCY_MS)
            outcomes = await _kill_with_submits_in_flight(desk, gateway, gateway_db, simulator, drafts)
            answered = {i for i, o in outcomes.items() if isinstance(o, httpx.Response)}
            for inquiry_id in answered:
                response = outcomes[inquiry_id]
                assert isinstance(response, httpx.Response)
                assert response.status_code == 200, response.text
            cut_off = set(outcomes) - answered
            assert all(isinstance(outcomes[i], httpx.TransportError) for i in cut_off)
            simulator.clear_faults()

            gateway.start()
            desk.forget_sessions()
            restarted_at = time.monotonic()

            async def nothing_queued() -> bool:
                return not await desk.inquiries("auditor", status="queued")

            # A delivery cut off by the kill keeps its claim for the outbox lease, then is retried.
            await wait_for_async(nothing_queued, within=90, interval=0.5, what="the outbox to drain")
            drained_after = time.monotonic() - restarted_at

            after_crash = {i["id"]: i for i in await desk.inquiries("auditor")}
            assert set(numbers) <= set(after_crash), "an inquiry disappeared"
            sent = {i for i in numbers if after_crash[i]["status"] != "awaiting_approval"}
            unsent = set(numbers) - sent
            for inquiry_id in numbers:
                inquiry = after_crash[inquiry_id]
                if inquiry_id in sent:
                    assert inquiry["status"] in FINAL_STATES, inquiry
                    assert inquiry["approval"]["method"] == "approval_number"
                    assert inquiry["approval"]["confirmer_id"] == "cf001"
                    assert inquiry["center"]["inquiry_id"]
                else:
                    assert inquiry["status"] == "awaiting_approval", inquiry
            # A submit the operator saw succeed is never undone by the crash.
            assert answered <= sent
            _assert_center_record_matches(simulator, after_crash, sent)
            _assert_approval_numbers_used_once(gateway_db, sent, unsent)
            _assert_outbox_delivered_once(gateway_db, sent)

            # The operator sends the drafts whose submit the crash cut off, with the same numbers.
            for inquiry_id in sorted(unsent):
                resent = await desk.submit("op001", inquiry_id, numbers[inquiry_id])
                assert resent.status_code == 200, resent.text

            async def all_answered() -> bool:
                items = await desk.inquiries("auditor")
                return all(i["status"] in FINAL_STATES for i in items if i["id"] in numbers)

            await wait_for_async(all_answered, within=60, interval=0.5, what="the resent inquiries")
            final = {i["id"]: i for i in await desk.inquiries("auditor")}
            _assert_center_record_matches(simulator, final, set(numbers))
            _assert_approval_numbers_used_once(gateway_db, set(numbers), set())

            verify = await desk.call("GET", "/audit/verify", "auditor")
            assert verify.status_code == 200, verify.text
            assert verify.json()["ok"] is True, verify.json()
        for log in gateway.root.glob("gateway-*.log"):
            assert "Traceback" not in log.read_text(encoding="utf-8", errors="replace"), log.name
        print(
            f"\n[{gateway_db.backend}] answered before the kill: {len(answered)}, cut off: {len(cut_off)} "
            f"(committed anyway: {len(cut_off & sent)}), outbox drained {drained_after:.1f} s after restart, "
            f"center duplicates suppressed: {simulator.stats()['duplicates_suppressed']}"
        )
    finally:
        gateway.stop()


def _assert_center_record_matches(
    simulator: Simulator, gateway_view: dict[str, dict[str, Any]], sent: set[str]
) -> None:
    entries = [e for e in simulator.record(MEMBER_CODE) if e["kind"] == "inquiry"]
    per_key = Counter(e["idempotency_key"] for e in entries)
    duplicated = {k: n for k, n in per_key.items() if n > 1}
    assert not duplicated, f"the center recorded inquiries twice: {duplicated}"
    assert set(per_key) == sent, (
        f"missing at the center: {len(sent - set(per_key))}, unknown to the gateway: "
        f"{len(set(per_key) - sent)}"
    )
    for entry in entries:
        assert gateway_view[entry["idempotency_key"]]["center"]["inquiry_id"] == entry["center_inquiry_id"]


def _assert_approval_numbers_used_once(db: GatewayDatabase, sent: set[str], unsent: set[str]) -> None:
    rows = db.rows("SELECT inquiry_id, state, count(*) FROM approval_numbers GROUP BY inquiry_id, state")
    states: dict[str, Counter[str]] = {}
    for inquiry_id, state, count in rows:
        states.setdefault(inquiry_id, Counter())[state] += int(count)
    for inquiry_id in sent:
        assert states[inquiry_id] == Counter(used=1), (inquiry_id, states[inquiry_id])
    for inquiry_id in unsent:
        # The crash rolled the submit back: the number is still the operator's to use.
        assert states[inquiry_id] == Counter(outstanding=1), (inquiry_id, states[inquiry_id])


def _assert_outbox_delivered_once(db: GatewayDatabase, sent: set[str]) -> None:
    rows = db.rows(
        "SELECT inquiry_id, count(*), sum(CASE WHEN delivered_at IS NULL THEN 1 ELSE 0 END) "
        "FROM center_outbox WHERE kind = 'inquire' GROUP BY inquiry_id"
    )
    per_inquiry = {inquiry_id: (int(count), int(open_)) for inquiry_id, count, open_ in rows}
    assert set(per_inquiry) == sent
    assert all(v == (1, 0) for v in per_inquiry.values()), "one outbox row per inquiry, all delivered"
