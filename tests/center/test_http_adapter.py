"""HttpCenterLink against the simulator running as a separate process (ER-3, RC-1, CC-1, EN-3, PL-2).

One simulator process serves the module; each test works under its own member code so records do not
mix, and clears the faults it set. Real sockets, real uvicorn, real refused connections.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.center.circuit import CircuitState
from app.center.http_adapter import CenterLinkSettings, HttpCenterLink
from app.center.interface import CenterRefused, CenterUnavailable
from app.center.simulator.population import Population
from app.clock import ManualClock, SystemClock, business_date_of
from tests.center.support import (
    inquiry_body,
    inquiry_request,
    make_pki,
    person,
    simulator_process,
    with_transactions,
    without_transactions,
)

_members = itertools.count(100)


class Control:
    """The simulator's ``/_sim/`` endpoints, a fresh connection per call (refusals drop pooled ones)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"{self.base_url}/center/v1", timeout=5) as client:
            return await client.request(method, path, **kwargs)

    async def faults(self, **settings: Any) -> None:
        response = await self.request("POST", "/_sim/faults", json=settings)
        assert response.status_code == 200, response.text

    async def clear(self) -> None:
        assert (await self.request("DELETE", "/_sim/faults")).status_code == 204

    async def stats(self) -> dict[str, int]:
        return dict((await self.request("GET", "/_sim/stats")).json())

    async def record(self, member_code: str) -> list[dict[str, Any]]:
        today = business_date_of(SystemClock().now())
        query: dict[str, Any] = {
            "member_code": member_code,
            "from": (today - timedelta(days=1)).isoformat(),
            "to": (today + timedelta(days=1)).isoformat(),
            "limit": 1000,
        }
        page = (await self.request("GET", "/inquiry-record", params=query)).json()
        assert page["next_cursor"] is None
        return list(page["items"])


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    with simulator_process() as url:
        yield url


@pytest.fixture
async def control(simulator_url: str) -> AsyncIterator[Control]:
    control = Control(simulator_url)
    yield control
    await control.clear()


@pytest.fixture
def member() -> str:
    return f"{next(_members):04d}"


def _settings(base_url: str, member: str, **overrides: Any) -> CenterLinkSettings:
    values: dict[str, Any] = {
        "base_url": base_url,
        "member_code": member,
        "connect_timeout_seconds": 1.0,
        "read_timeout_seconds": 2.0,
        "max_attempts": 4,
        "backoff_initial_seconds": 0.02,
        "backoff_max_seconds": 0.1,
        "breaker_failure_threshold": 50,
    }
    return CenterLinkSettings(**{**values, **overrides})


async def test_inquire_cancel_and_refusals(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    customer = person(population, with_transactions)
    async with HttpCenterLink(_settings(simulator_url, member), clock=SystemClock()) as link:
        answer = await link.inquire(inquiry_request(customer, member_code=member, key="q-1"))
        assert answer.result == "found" and answer.record is not None
        assert answer.record.identity.birth_date == customer.birth_date

        no_trades = person(population, without_transactions)
        with pytest.raises(CenterRefused) as refused:
            await link.inquire(
                inquiry_request(no_trades, purpose="credit_review", member_code=member, key="q-2")
            )
        assert refused.value.code == "NO_TRADE_INFO" and refused.value.status == 422
        assert refused.value.center_inquiry_id is not None
        assert no_trades.surname_kana not in str(refused.value)

        with pytest.raises(CenterRefused) as wrong_member:
            await link.inquire(inquiry_request(customer, member_code="0001", key="q-3"))
        assert wrong_member.value.code == "MEMBER_CODE_MISMATCH"

        cancellation = await link.cancel(answer.center_inquiry_id, "wrong customer", "cancel-q-1")
        assert cancellation.center_inquiry_id == answer.center_inquiry_id
        assert await link.cancel(answer.center_inquiry_id, "wrong customer", "cancel-q-1") == cancellation
        with pytest.raises(CenterRefused) as unknown:
            await link.cancel("CI-UNKNOWN-1", "typo", "cancel-unknown")
        assert unknown.value.code == "NOT_FOUND" and unknown.value.status == 404

    record = await control.record(member)
    kinds = [(e["kind"], e["idempotency_key"]) for e in record]
    assert kinds == [("inquiry", "q-1"), ("inquiry", "q-2"), ("cancellation", "cancel-q-1")]
    # The refusal names when the center recorded the refused inquiry, as its record does.
    assert refused.value.received_at == datetime.fromisoformat(record[1]["at"])
    assert refused.value.received_at is not None and refused.value.received_at.tzinfo is not None


async def test_retries_under_errors_use_the_same_key_and_record_one_inquiry_each(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    await control.faults(error_rate=0.5, seed=7)
    before = await control.stats()
    async with HttpCenterLink(_settings(simulator_url, member, max_attempts=12), clock=SystemClock()) as link:
        answers = [
            await link.inquire(inquiry_request(population[i], member_code=member, key=f"e-{i}"))
            for i in range(8)
        ]
        # Duplicates sent at once (an outbox sender and a terminal's retry racing) are one inquiry too.
        racing = await asyncio.gather(
            *(link.inquire(inquiry_request(population[20], member_code=member, key="race")) for _ in range(6))
        )
    after = await control.stats()
    assert after["faulted_errors"] - before["faulted_errors"] >= 4, "the faults did fire"
    assert len({a.center_inquiry_id for a in racing}) == 1
    entries = await control.record(member)
    assert sorted(e["idempotency_key"] for e in entries) == sorted([*(f"e-{i}" for i in range(8)), "race"])
    assert {e["center_inquiry_id"] for e in entries} == {a.center_inquiry_id for a in [*answers, racing[0]]}


async def test_a_timeout_is_center_unavailable_and_the_retry_finds_the_recorded_inquiry(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    await control.faults(timeout_rate=1.0, timeout_ms=5000)
    settings = _settings(simulator_url, member, read_timeout_seconds=0.3, max_attempts=2)
    request = inquiry_request(population[30], member_code=member, key="slow-1")
    async with HttpCenterLink(settings, clock=SystemClock()) as link:
        started = time.monotonic()
        with pytest.raises(CenterUnavailable) as unavailable:
            await link.inquire(request)
        assert time.monotonic() - started < 2.0
        assert unavailable.value.reason == "timeout" and unavailable.value.attempts == 2
        await control.clear()
        # The center did record the inquiry; only its answer was lost.
        recorded = await control.record(member)
        assert len(recorded) == 1

        answer = await link.inquire(request)  # what the outbox does later, with the same key
    assert answer.center_inquiry_id == recorded[0]["center_inquiry_id"]
    assert len(await control.record(member)) == 1


async def test_refused_connections_fail_fast_and_the_link_recovers(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    port = int(simulator_url.rsplit(":", 1)[1])
    async with HttpCenterLink(_settings(simulator_url, member, max_attempts=3), clock=SystemClock()) as link:
        # A first call leaves a keep-alive connection in the pool, which the refusal must also cut.
        await link.inquire(inquiry_request(population[40], member_code=member, key="before"))
        await control.faults(refuse_connections_seconds=1.5)
        refused_at = time.monotonic()
        await asyncio.sleep(0.6)  # well past the grace after which open connections are dropped

        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        started = time.monotonic()
        with pytest.raises(CenterUnavailable) as unavailable:
            await link.inquire(inquiry_request(population[41], member_code=member, key="during"))
        assert time.monotonic() - started < 0.5, "refused connections fail fast, not by timeout"
        assert unavailable.value.reason == "connect_failed" and unavailable.value.attempts == 3

        await asyncio.sleep(max(0.0, refused_at + 1.9 - time.monotonic()))
        answer = await link.inquire(inquiry_request(population[41], member_code=member, key="during"))
    assert answer.result == "found"
    assert [e["idempotency_key"] for e in await control.record(member)] == ["before", "during"]


async def test_the_breaker_opens_after_repeated_failures_and_closes_after_the_cool_down(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    clock = ManualClock()
    settings = _settings(
        simulator_url, member, max_attempts=2, breaker_failure_threshold=3, breaker_cool_down_seconds=30
    )
    request = inquiry_request(population[50], member_code=member, key="breaker-1")
    await control.faults(error_rate=1.0)
    async with HttpCenterLink(settings, clock=clock) as link:
        with pytest.raises(CenterUnavailable) as first:
            await link.inquire(request)
        assert (first.value.reason, first.value.attempts, first.value.status) == ("http_503", 2, 503)
        with pytest.raises(CenterUnavailable) as second:
            await link.inquire(request)
        assert second.value.attempts == 1, "the breaker opened on the third failure: no more retries"
        assert link.state is CircuitState.OPEN

        before = await control.stats()
        with pytest.raises(CenterUnavailable) as fast:
            await link.inquire(request)
        assert fast.value.reason == "circuit_open" and fast.value.retry_after == pytest.approx(30)
        assert (await control.stats())["center_requests"] == before["center_requests"], "nothing was sent"

        await control.clear()
        clock.advance(seconds=30)
        assert link.state is CircuitState.HALF_OPEN
        answer = await link.inquire(request)
        assert link.state is CircuitState.CLOSED
    assert answer.result == "found"
    assert len(await control.record(member)) == 1


async def test_inquiry_record_streams_every_entry_page_by_page(
    simulator_url: str, control: Control, member: str, population: Population
) -> None:
    async with HttpCenterLink(
        _settings(simulator_url, member, record_page_size=3), clock=SystemClock()
    ) as link:
        answers = [
            await link.inquire(inquiry_request(population[i], member_code=member, key=f"r-{i}"))
            for i in range(12)
        ]
        for answer in answers[:3]:
            await link.cancel(answer.center_inquiry_id, "duplicate entry", f"c-{answer.center_inquiry_id}")
        for i in range(5):
            direct = inquiry_body(population[100 + i], member_code=member, terminal_id="CENTER-DESK")
            del direct["idempotency_key"]
            assert (await control.request("POST", "/_sim/direct-inquiries", json=direct)).status_code == 201

        today = business_date_of(SystemClock().now())
        before = await control.stats()
        entries = [entry async for entry in link.inquiry_record(member, today - timedelta(days=1), today)]
        pages = (await control.stats())["center_requests"] - before["center_requests"]

    assert len(entries) == 20 and pages == math.ceil(20 / 3)
    assert len({e.entry_id for e in entries}) == 20
    assert [(e.at, e.entry_id) for e in entries] == sorted((e.at, e.entry_id) for e in entries)
    assert sum(e.kind == "cancellation" for e in entries) == 3
    assert sorted({e.via for e in entries if e.terminal_id == "CENTER-DESK"}) == ["direct"]
    assert sum(e.via == "direct" for e in entries) == 5


async def test_a_center_on_this_machine_is_reached_directly_whatever_proxy_the_environment_names(
    simulator_url: str, member: str, population: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plain http is allowed only to this machine; a proxy would carry it off the machine (EN-3).
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://192.0.2.1:3128")  # a proxy that does not answer
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = _settings(simulator_url, member, max_attempts=1)
    async with HttpCenterLink(settings, clock=SystemClock()) as link:
        customer = person(population, with_transactions)
        answer = await link.inquire(inquiry_request(customer, member_code=member))
    assert answer.result == "found"


async def test_mutual_tls_to_the_center(tmp_path: Path, population: Population) -> None:
    pki = make_pki(tmp_path)
    tls_args = (
        "--tls-cert",
        str(pki.server_cert),
        "--tls-key",
        str(pki.server_key),
        "--tls-client-ca",
        str(pki.ca),
    )
    probe = ssl.create_default_context(cafile=str(pki.ca))
    probe.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with simulator_process(*tls_args, scheme="https", verify=probe) as url:
        assert url.startswith("https://")
        mtls = _settings(
            url, "0009", tls_ca_bundle=pki.ca, tls_client_cert=pki.client_cert, tls_client_key=pki.client_key
        )
        async with HttpCenterLink(mtls, clock=SystemClock()) as link:
            answer = await link.inquire(inquiry_request(population[0], member_code="0009", key="tls-1"))
            assert answer.result == "found"

        without_client_cert = _settings(url, "0009", tls_ca_bundle=pki.ca, max_attempts=1)
        untrusted_server = _settings(
            url, "0009", tls_ca_bundle=pki.other_ca, tls_client_cert=pki.client_cert,
            tls_client_key=pki.client_key, max_attempts=1,
        )  # fmt: skip
        for settings in (without_client_cert, untrusted_server):
            async with HttpCenterLink(settings, clock=SystemClock()) as link:
                with pytest.raises(CenterUnavailable):
                    await link.inquire(inquiry_request(population[0], member_code="0009", key="tls-2"))
