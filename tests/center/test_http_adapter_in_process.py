"""HttpCenterLink with the simulator mounted in-process, as the embedded gateway runs it (ER-3, RC-1, EN-3).

Also the adapter's edges that need a scripted center (httpx.MockTransport): odd refusals, unreadable
answers, and what it does with an injected client.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.center.http_adapter import CenterLinkSettings, HttpCenterLink, tls_context
from app.center.interface import CenterRefused, CenterUnavailable
from app.center.simulator import simulator_state, simulator_transport
from app.center.simulator.population import Population
from app.center.simulator.schemas import DirectEntryIn, FaultSettings
from app.clock import ManualClock
from tests.center.support import MEMBER, inquiry_body, inquiry_request, make_pki

BASE = "http://center.test"


def _settings(**overrides: Any) -> CenterLinkSettings:
    values: dict[str, Any] = {"base_url": BASE, "member_code": MEMBER, "backoff_initial_seconds": 0.1}
    return CenterLinkSettings(**{**values, **overrides})


async def test_retries_back_off_exponentially_with_jitter_on_the_same_key(
    sim_app: FastAPI, population: Population, clock: ManualClock
) -> None:
    state = simulator_state(sim_app)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            state.faults.clear()  # the center recovers while the link waits before its fourth attempt

    state.faults.apply(FaultSettings(error_rate=1.0))
    settings = _settings(max_attempts=4, backoff_initial_seconds=0.1, backoff_max_seconds=0.3)
    link = HttpCenterLink(settings, clock=clock, transport=simulator_transport(sim_app), sleep=sleep)
    async with link:
        answer = await link.inquire(inquiry_request(population[0], key="outbox-1"))
    assert answer.result == "found"
    # Steps of 0.1, 0.2, 0.3 (capped); each waits between half the step and the full step.
    for waited, step in zip(sleeps, (0.1, 0.2, 0.3), strict=True):
        assert step / 2 <= waited <= step
    stats = state.stats()
    assert stats.faulted_errors == 3 and stats.inquiries_recorded == 1


async def test_the_attempt_deadline_times_out_an_in_process_center(
    sim_app: FastAPI, population: Population, clock: ManualClock
) -> None:
    # httpx's socket timeouts do not apply to an ASGI transport; the per-attempt deadline does.
    state = simulator_state(sim_app)
    state.faults.apply(FaultSettings(timeout_rate=1.0, timeout_ms=10_000))
    settings = _settings(
        connect_timeout_seconds=0.05, write_timeout_seconds=0.05, read_timeout_seconds=0.1, max_attempts=2
    )
    started = time.monotonic()
    async with HttpCenterLink(settings, clock=clock, transport=simulator_transport(sim_app)) as link:
        with pytest.raises(CenterUnavailable) as unavailable:
            await link.inquire(inquiry_request(population[1], key="deadline"))
    assert unavailable.value.reason == "timeout"
    assert time.monotonic() - started < 2
    assert state.stats().inquiries_recorded == 1 and state.stats().duplicates_suppressed == 1


async def test_a_large_record_streams_in_bounded_pages(
    sim_app: FastAPI, population: Population, clock: ManualClock
) -> None:
    center = simulator_state(sim_app).center
    subject = inquiry_body(population[2])["subject"]
    for n in range(5_000):
        center.record_direct(
            DirectEntryIn(
                member_code=MEMBER,
                branch_code=f"{n % 40:03d}",
                terminal_id=f"T{n % 300}",
                operator_ref=f"op{n % 500}",
                purpose="new_credit",
                subject=subject,
                at=clock.now() + timedelta(seconds=n % 3600),
            )
        )
    pages = 0

    async def count_pages(request: httpx.Request) -> None:
        nonlocal pages
        pages += 1

    client = httpx.AsyncClient(transport=simulator_transport(sim_app), event_hooks={"request": [count_pages]})
    async with client:
        link = HttpCenterLink(_settings(record_page_size=1000), clock=clock, client=client)
        seen = 0
        previous: tuple[datetime, str] | None = None
        async for entry in link.inquiry_record(MEMBER, date(2026, 11, 24), date(2026, 11, 24)):
            key = (entry.at, entry.entry_id)
            assert previous is None or previous < key
            previous, seen = key, seen + 1
        record_pages = pages
        await link.aclose()
        # The injected client belongs to the caller and stays usable.
        assert (await client.get(f"{BASE}/center/v1/_sim/stats")).status_code == 200
    assert seen == 5_000 and record_pages == 5


def _scripted(
    status: int, body: Any = None, content: bytes | None = None, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(answer)


async def test_only_the_centers_own_codes_make_a_4xx_a_refusal(
    population: Population, clock: ManualClock
) -> None:
    refusals = [
        (422, {"code": "NO_TRADE_INFO", "center_inquiry_id": "CI-1"}, "NO_TRADE_INFO"),
        (422, {"code": "VALIDATION"}, "VALIDATION"),
        (409, {"code": "IDEMPOTENCY_KEY_REUSED"}, "IDEMPOTENCY_KEY_REUSED"),
    ]
    for status, body, expected in refusals:
        async with HttpCenterLink(_settings(), clock=clock, transport=_scripted(status, body)) as link:
            with pytest.raises(CenterRefused) as refused:
                await link.inquire(inquiry_request(population[0]))
            assert refused.value.code == expected and refused.value.status == status
            assert link.state.value == "closed", "a refusal is an answer: the center is up"


async def test_a_refusals_time_of_record_is_kept_only_when_it_is_unambiguous(
    population: Population, clock: ManualClock
) -> None:
    """The time the center recorded a refused inquiry decides on which of its days the inquiry is
    reconciled: a time without its offset, or not a time, is dropped (the gateway's own time is used)."""
    times = [
        ("2026-11-24T14:59:58Z", datetime(2026, 11, 24, 14, 59, 58, tzinfo=UTC)),
        ("2026-11-24T23:59:58+09:00", datetime(2026, 11, 24, 14, 59, 58, tzinfo=UTC)),
        ("2026-11-24T23:59:58", None),
        ("yesterday", None),
        (1764000000, None),
    ]
    for raw, expected in times:
        body = {"code": "NO_TRADE_INFO", "center_inquiry_id": "CI-1", "received_at": raw}
        async with HttpCenterLink(_settings(), clock=clock, transport=_scripted(422, body)) as link:
            with pytest.raises(CenterRefused) as refused:
                await link.inquire(inquiry_request(population[0]))
        assert refused.value.received_at == expected, raw


async def test_a_4xx_from_something_in_between_is_a_link_failure_not_an_answer(
    population: Population, clock: ManualClock
) -> None:
    """A TLS terminator refusing an expired client certificate, a proxy's 401, a wrong base path: none of
    them is the center's answer to the inquiry. Taken for refusals they settled every queued inquiry as
    center_error (each to be entered again under a fresh two-person approval); they are failures of the
    link, retried with the same key, and they open the circuit."""
    in_between = [
        (422, {"code": "ヤマダ タロウ is unknown"}, "http_422"),  # not a well-formed code: never passed on
        (400, None, "http_400"),
        (401, {"detail": "authentication required"}, "http_401"),
        (403, {"detail": "certificate not registered"}, "http_403"),
        (404, {"code": "UNKNOWN_PATH"}, "http_404"),
    ]
    for status, body, reason in in_between:
        settings = _settings(max_attempts=2, backoff_initial_seconds=0.001, breaker_failure_threshold=2)
        async with HttpCenterLink(settings, clock=clock, transport=_scripted(status, body)) as link:
            with pytest.raises(CenterUnavailable) as unavailable:
                await link.inquire(inquiry_request(population[0]))
            assert unavailable.value.reason == reason and unavailable.value.attempts == 2
            assert "ヤマダ" not in str(unavailable.value)
            assert link.state.value == "open", "the link is failing: the breaker must see it"


async def test_transient_statuses_and_unreadable_answers_are_center_unavailable(
    population: Population, clock: ManualClock
) -> None:
    cases = [
        # An answer whose declared content encoding does not decode.
        (
            _scripted(200, content=b"not gzip at all", headers={"content-encoding": "gzip"}),
            "http_error_DecodingError",
        ),
        (_scripted(503, {"code": "CENTER_UNAVAILABLE"}), "http_503"),
        (_scripted(429, {}), "http_429"),
        (_scripted(200, content=b"<html>maintenance</html>"), "malformed_answer"),
        (_scripted(200, {"center_inquiry_id": "CI-1"}), "malformed_answer"),
    ]
    for transport, reason in cases:
        async with HttpCenterLink(
            _settings(max_attempts=2, backoff_initial_seconds=0.001), clock=clock, transport=transport
        ) as link:
            with pytest.raises(CenterUnavailable) as unavailable:
                await link.inquire(inquiry_request(population[0]))
        assert unavailable.value.reason == reason and unavailable.value.attempts == 2


def test_settings_refuse_a_misconfigured_link(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(ValueError, match="https"):
        CenterLinkSettings(base_url="http://center.example", member_code="0009", tls_ca_bundle=pki.ca)
    with pytest.raises(ValueError, match="tls_client_cert"):
        CenterLinkSettings(
            base_url="https://center.example", member_code="0009", tls_client_key=pki.client_key
        )
    with pytest.raises(ValueError):
        CenterLinkSettings(base_url=BASE, member_code="0009", max_attempts=0)
    with pytest.raises(ValueError):
        CenterLinkSettings(base_url=BASE, member_code="0009", record_page_size=5000)

    assert tls_context(CenterLinkSettings(base_url="https://center.example", member_code="0009")) is None
    context = tls_context(
        CenterLinkSettings(
            base_url="https://center.example",
            member_code="0009",
            tls_ca_bundle=pki.ca,
            tls_client_cert=pki.client_cert,
            tls_client_key=pki.client_key,
        )
    )
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
