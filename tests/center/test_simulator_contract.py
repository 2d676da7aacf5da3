"""The center simulator speaks api.md's center-link contract (PL-2, ER-2, ER-3, CC-1, RC-1).

In-process over the simulator's own transport; the same app runs as a separate process in
test_http_adapter.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.center.interface import CenterAnswer, CenterRecordEntry
from app.center.simulator import simulator_state
from app.center.simulator.population import Population
from app.clock import ManualClock
from tests.center.support import MEMBER, inquiry_body, person, with_transactions, without_transactions

TODAY = {"member_code": MEMBER, "from": "2026-11-24", "to": "2026-11-24"}


async def _record(center: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every entry of the inquiry record, following the cursor."""
    query = {**TODAY, **params}
    items: list[dict[str, Any]] = []
    while True:
        page = (await center.get("/inquiry-record", params=query)).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


# -- answers per purpose (PL-2) -------------------------------------------------------------------------


async def test_a_known_subject_gets_the_full_credit_record_for_new_credit(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    someone = person(population, lambda p: with_transactions(p) and p.has_delinquency)
    response = await center.post("/inquiries", json=inquiry_body(someone, purpose="new_credit"))
    assert response.status_code == 200
    answer = CenterAnswer.model_validate(response.json())
    assert answer.result == "found" and answer.received_at == clock.now()
    record = answer.record
    assert record is not None and record.scope == "full"
    assert record.identity.name_kanji == someone.name_kanji
    assert [loan.lender for loan in record.loans] == [loan.lender for loan in someone.loans]
    assert len(record.delinquencies) == len(someone.delinquencies) >= 1
    assert record.latest_address is not None
    assert record.latest_address.address == someone.latest_address.address


async def test_an_unknown_subject_is_not_found(center: httpx.AsyncClient) -> None:
    for purpose in ("new_credit", "guarantor", "suspension_check", "gazette_check"):
        body = inquiry_body(("ミカクニン　ダレカ", "1977-07-07"), purpose=purpose, key=f"nf-{purpose}")
        response = await center.post("/inquiries", json=body)
        assert response.status_code == 200
        assert response.json()["result"] == "not_found"
        assert response.json()["record"] is None


@pytest.mark.parametrize("purpose", ["credit_review", "relocation_check"])
async def test_no_trade_info_for_subjects_without_transactions(
    center: httpx.AsyncClient, population: Population, purpose: str
) -> None:
    nobody = ("ミカクニン　ダレカ", "1977-07-07")
    no_trades = person(population, without_transactions)
    for key, subject in (("unknown", nobody), ("no-trades", no_trades)):
        response = await center.post("/inquiries", json=inquiry_body(subject, purpose=purpose, key=key))
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "NO_TRADE_INFO"
        assert problem["center_inquiry_id"].startswith("CI-")
        assert no_trades.surname_kana not in response.text
    # The inquiries happened, so the center holds them in its record.
    assert [entry["kind"] for entry in await _record(center)] == ["inquiry", "inquiry"]
    # A customer with transactions gets an answer for the same purpose.
    customer = person(population, with_transactions)
    response = await center.post("/inquiries", json=inquiry_body(customer, purpose=purpose, key="customer"))
    assert response.status_code == 200 and response.json()["result"] == "found"


async def test_each_purpose_sees_only_its_part_of_the_record(
    center: httpx.AsyncClient, population: Population
) -> None:
    someone = person(population, lambda p: with_transactions(p) and p.suspended and p.in_gazette)

    async def record_for(purpose: str) -> dict[str, Any]:
        response = await center.post("/inquiries", json=inquiry_body(someone, purpose=purpose, key=purpose))
        assert response.status_code == 200, response.text
        return dict(response.json()["record"])

    suspension = await record_for("suspension_check")
    assert suspension["scope"] == "suspension" and len(suspension["suspensions"]) == 1
    assert (
        not suspension["loans"] and not suspension["gazette_entries"] and suspension["latest_address"] is None
    )

    gazette = await record_for("gazette_check")
    assert gazette["scope"] == "gazette" and not gazette["suspensions"] and not gazette["loans"]
    assert len(gazette["gazette_entries"]) == len(someone.gazette_entries)

    relocation = await record_for("relocation_check")
    assert relocation["scope"] == "address" and not relocation["loans"] and not relocation["suspensions"]
    assert relocation["latest_address"]["address"] == someone.latest_address.address

    for purpose in ("guarantor", "credit_review"):
        full = await record_for(purpose)
        assert full["scope"] == "full" and full["loans"] and full["suspensions"]


async def test_the_body_is_validated_without_echoing_it(
    center: httpx.AsyncClient, population: Population
) -> None:
    someone = population[0]
    bad_bodies = [
        inquiry_body(someone, purpose="marketing"),
        {**inquiry_body(someone), "idempotency_key": ""},
        {**inquiry_body(someone), "my_number": "123456789018"},
        inquiry_body((someone.name_kanji, "1980-01-01")),  # kanji in the kana field
    ]
    for body in bad_bodies:
        response = await center.post("/inquiries", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "VALIDATION"
        assert someone.given_kana not in response.text and someone.given_kanji not in response.text
    assert await _record(center) == []


# -- idempotency (ER-2, ER-3) ---------------------------------------------------------------------------


async def test_the_same_idempotency_key_gets_the_same_answer_and_one_record_entry(
    center: httpx.AsyncClient, population: Population, sim_app: FastAPI, clock: ManualClock
) -> None:
    body = inquiry_body(population[1], key="outbox-row-17")
    first = await center.post("/inquiries", json=body)
    clock.advance(minutes=5)
    again = await center.post("/inquiries", json=body)
    assert again.status_code == 200 and again.json() == first.json()
    # The same key for another subject is a client bug, not a replay.
    reused = await center.post("/inquiries", json=inquiry_body(population[2], key="outbox-row-17"))
    assert reused.status_code == 409 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Keys belong to a member: another member may use the same key.
    other_member = await center.post(
        "/inquiries", json=inquiry_body(population[1], key="outbox-row-17", member_code="0010")
    )
    assert other_member.json()["center_inquiry_id"] != first.json()["center_inquiry_id"]
    assert len(await _record(center)) == 1
    stats = simulator_state(sim_app).stats()
    assert stats.inquiries_recorded == 2 and stats.duplicates_suppressed == 1


async def test_concurrent_duplicates_record_one_inquiry(
    center: httpx.AsyncClient, population: Population, sim_app: FastAPI
) -> None:
    # Latency makes all the duplicates wait inside the simulator at the same time.
    assert (await center.post("/_sim/faults", json={"latency_ms": 30})).status_code == 200
    body = inquiry_body(population[3], key="retry-storm")
    responses = await asyncio.gather(*(center.post("/inquiries", json=body) for _ in range(25)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["center_inquiry_id"] for r in responses}) == 1
    assert len(await _record(center)) == 1
    assert simulator_state(sim_app).stats().duplicates_suppressed == 24


# -- cancellation (CC-1) --------------------------------------------------------------------------------


async def test_cancellation_is_recorded_once_and_unknown_ids_are_404(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    answer = (await center.post("/inquiries", json=inquiry_body(population[4]))).json()
    inquiry_id = answer["center_inquiry_id"]
    clock.advance(minutes=3)
    cancel = {"reason": "entered for the wrong customer", "idempotency_key": "cancel-1"}
    first = await center.post(f"/inquiries/{inquiry_id}/cancel", json=cancel)
    assert first.status_code == 200
    assert first.json()["center_inquiry_id"] == inquiry_id
    assert datetime.fromisoformat(first.json()["cancelled_at"]) == clock.now()
    again = await center.post(f"/inquiries/{inquiry_id}/cancel", json={"reason": "again"})
    assert again.json() == first.json()

    entries = await _record(center)
    assert [(e["kind"], e["center_inquiry_id"]) for e in entries] == [
        ("inquiry", inquiry_id),
        ("cancellation", inquiry_id),
    ]
    cancellation = entries[1]
    assert cancellation["entry_id"] == first.json()["entry_id"]
    assert cancellation["via"] == "gateway" and cancellation["idempotency_key"] == "cancel-1"
    assert cancellation["terminal_id"] == entries[0]["terminal_id"]

    missing = await center.post("/inquiries/CI-NOPE-0000000001/cancel", json={"reason": "x"})
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


# -- the inquiry record (RC-1) --------------------------------------------------------------------------


async def test_the_inquiry_record_pages_through_every_entry_in_a_stable_order(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    for index in range(23):
        body = inquiry_body(population[index], key=f"k{index}", terminal_id=f"T{index % 3}")
        assert (await center.post("/inquiries", json=body)).status_code == 200
        clock.advance(seconds=7)
    # Another member's inquiries are not part of this member's record.
    await center.post("/inquiries", json=inquiry_body(population[0], key="x", member_code="0777"))

    entries = await _record(center, limit=5)
    assert len(entries) == 23
    assert len({e["entry_id"] for e in entries}) == 23
    keys = [(e["at"], e["entry_id"]) for e in entries]
    assert keys == sorted(keys)
    assert entries == await _record(center, limit=1000)
    for entry in entries:
        CenterRecordEntry.model_validate(entry)
        assert entry["member_code"] == MEMBER and entry["via"] == "gateway"

    bad = await center.get("/inquiry-record", params={**TODAY, "cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION"
    too_big = await center.get("/inquiry-record", params={**TODAY, "limit": 1001})
    assert too_big.status_code == 422


async def test_the_record_period_is_in_tokyo_business_dates(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    # 2026-11-23 15:30 UTC is already 2026-11-24 00:30 in Tokyo.
    clock.set(datetime(2026, 11, 23, 15, 30, tzinfo=UTC))
    await center.post("/inquiries", json=inquiry_body(population[0], key="after-midnight-jst"))
    clock.set(datetime(2026, 11, 23, 14, 59, tzinfo=UTC))
    await center.post("/inquiries", json=inquiry_body(population[1], key="before-midnight-jst"))
    on_24th = await _record(center)
    on_23rd = await _record(center, **{"from": "2026-11-23", "to": "2026-11-23"})
    assert [e["idempotency_key"] for e in on_24th] == ["after-midnight-jst"]
    assert [e["idempotency_key"] for e in on_23rd] == ["before-midnight-jst"]


async def test_direct_inquiries_appear_in_the_record_flagged_direct(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    gateway = (await center.post("/inquiries", json=inquiry_body(population[5], key="via-gw"))).json()
    clock.advance(minutes=1)
    direct = inquiry_body(population[6], terminal_id="CENTER-DESK")
    del direct["idempotency_key"]
    made = await center.post("/_sim/direct-inquiries", json=direct)
    assert made.status_code == 201
    backdated = {
        **direct,
        "kind": "correction",
        "center_inquiry_id": gateway["center_inquiry_id"],
        "at": (clock.now() - timedelta(hours=1)).isoformat(),
    }
    assert (await center.post("/_sim/direct-inquiries", json=backdated)).status_code == 201

    entries = await _record(center)
    assert [(e["kind"], e["via"]) for e in entries] == [
        ("correction", "direct"),  # back-dated before the gateway's inquiry
        ("inquiry", "gateway"),
        ("inquiry", "direct"),
    ]
    assert entries[2]["idempotency_key"] is None and entries[2]["terminal_id"] == "CENTER-DESK"
    assert entries[2]["subject"]["name_kana"] == population[6].kana_key


# -- faults and the population listing ------------------------------------------------------------------


async def test_faults_in_process(
    center: httpx.AsyncClient, population: Population, clock: ManualClock
) -> None:
    await center.post("/_sim/faults", json={"error_rate": 1.0})
    failed = await center.post("/inquiries", json=inquiry_body(population[7]))
    assert failed.status_code == 503 and failed.json()["code"] == "CENTER_UNAVAILABLE"

    await center.post("/_sim/faults", json={"refuse_connections_seconds": 10})
    with pytest.raises(httpx.ConnectError):
        await center.post("/inquiries", json=inquiry_body(population[7]))
    clock.advance(seconds=10)
    assert (await center.post("/inquiries", json=inquiry_body(population[7]))).status_code == 200

    await center.post("/_sim/faults", json={"refuse_connections_seconds": 10})
    assert (await center.delete("/_sim/faults")).status_code == 204
    assert (await center.get("/_sim/faults")).json()["refuse_connections_seconds"] == 0
    assert (await center.post("/inquiries", json=inquiry_body(population[7]))).status_code == 200

    nonsense = await center.post("/_sim/faults", json={"error_rate": 0.7, "timeout_rate": 0.7})
    assert nonsense.status_code == 422


async def test_the_population_listing_lets_tests_pick_people(
    center: httpx.AsyncClient, population: Population
) -> None:
    page = (await center.get("/_sim/population", params={"offset": 10, "limit": 3})).json()
    assert page["total"] == len(population) and page["next_offset"] == 13
    assert [p["index"] for p in page["items"]] == [10, 11, 12]
    first = page["items"][0]
    assert first["name_kana"] == population[10].name_kana
    assert set(first) >= {"has_transactions", "has_delinquency", "in_gazette", "suspended", "birth_date"}
    last = (await center.get("/_sim/population", params={"offset": len(population) - 2})).json()
    assert len(last["items"]) == 2 and last["next_offset"] is None
