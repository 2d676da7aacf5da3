"""When the center misbehaves, terminals keep working and every inquiry goes out once when it recovers.

ER-1, ER-3: the simulator runs as its own process and is told to fail in each of its ways — every
request answered 503, every answer lost after the center recorded it (a timeout), answers slower than
the gateway waits, and connections refused at the TCP level. While the fault lasts:

* submitting an approved draft answers 200 with ``queued`` (the interactive wait gives up; no 500);
* the inquiry stays ``queued`` and GET /inquiries/{id} keeps answering;
* the outbox notes the failure and keeps the row.

After the fault is cleared (DELETE /center/v1/_sim/faults, or the refusal window ends) every inquiry
completes (``held``) within a bounded time, and the center's own record holds exactly one entry for
each — a retry after a lost answer replays the first answer instead of making a second inquiry.

The gateway runs with a 1 s center read timeout and a 2 s circuit-breaker cool-down (settings an
operator can set), so a fault of a few seconds is met by the outbox's first retries (2 s, 4 s, 8 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.processes.support import (
    Desk,
    Gateway,
    GatewayDatabase,
    Simulator,
    gateway_instance,
    process_env,
    running_simulator,
    wait_for,
    wait_for_async,
)

INQUIRIES_PER_FAULT = 3
REFUSAL_SECONDS = 6.0


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    with running_simulator(tmp_path_factory.mktemp("center")) as sim:
        yield sim


@pytest.fixture(scope="module")
def gateway(center: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = process_env(
        SHOKAI_CENTER_URL=center.url,
        SHOKAI_CENTER_READ_TIMEOUT_SECONDS="1",
        SHOKAI_CENTER_BREAKER_COOLDOWN_SECONDS="2",
    )
    with gateway_instance(tmp_path_factory.mktemp("faults") / "gateway", env=env) as instance:
        yield instance
    assert "Traceback" not in instance.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def people(center: Simulator) -> list[dict[str, Any]]:
    return center.people(60)


FAULTS: dict[str, tuple[dict[str, float], str]] = {
    # name: (the simulator's fault settings, the cause the gateway's log names)
    "every_request_503": ({"error_rate": 1.0}, "http_503"),
    "answers_lost_after_recording": ({"timeout_rate": 1.0, "timeout_ms": 2500}, "timeout"),
    "slower_than_the_gateway_waits": ({"latency_ms": 2500}, "timeout"),
    "connections_refused": ({"refuse_connections_seconds": REFUSAL_SECONDS}, "connect_failed"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_inquiries_wait_out_a_center_fault_and_are_sent_once(
    fault: str, center: Simulator, gateway: Gateway, people: list[dict[str, Any]]
) -> None:
    settings, cause = FAULTS[fault]
    offset = list(FAULTS).index(fault) * INQUIRIES_PER_FAULT
    subjects = people[offset : offset + INQUIRIES_PER_FAULT]
    async with httpx.AsyncClient(timeout=30) as http:
        desk = Desk(gateway, http)
        drafts = []
        for subject in subjects:
            draft = await desk.draft("op001", subject)
            drafts.append((draft["id"], await desk.approval_number("cf001", draft["id"])))
        ids = [i for i, _ in drafts]

        log_from = gateway.log_path.stat().st_size
        before = center.stats()
        center.faults(**settings)
        fault_on = time.monotonic()
        submitted = await asyncio.gather(*(desk.submit("op001", i, n) for i, n in drafts))
        for response in submitted:
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "queued", response.json()
            assert response.json()["approval"]["confirmer_id"] == "cf001"
        for inquiry_id in ids:
            for reader in ("op001", "cf001"):
                seen = await desk.get(reader, inquiry_id)
                assert seen["status"] == "queued"
                assert seen["center"] is None, "nothing from the center yet"
            held = await desk.read_response("op001", inquiry_id)
            assert held.status_code == 423, held.text
        assert (await http.get(f"{gateway.url}/healthz")).status_code == 200

        _clear(center, fault, fault_on)
        cleared = time.monotonic()

        async def all_held() -> list[dict[str, Any]] | None:
            states = [await desk.get("op001", i) for i in ids]
            return states if all(s["status"] == "held" for s in states) else None

        final = await wait_for_async(all_held, within=45, interval=0.5, what="the queued inquiries")
        recovery = time.monotonic() - cleared

    per_key = center.inquiries_per_key()
    assert {i: per_key[i] for i in ids} == dict.fromkeys(ids, 1), "exactly one center entry per inquiry"
    by_key = {e["idempotency_key"]: e for e in center.record() if e["kind"] == "inquiry"}
    for state in final:
        assert by_key[state["id"]]["center_inquiry_id"] == state["center"]["inquiry_id"]
    _assert_outbox_retried(gateway, ids)
    # The operator's log names what went wrong with the center.
    with gateway.log_path.open("rb") as log:
        log.seek(log_from)
        assert f"): {cause}" in log.read().decode(errors="replace")
    after = center.stats()
    if fault == "every_request_503":
        assert after["faulted_errors"] > before["faulted_errors"]
    if fault == "answers_lost_after_recording":
        assert after["faulted_timeouts"] > before["faulted_timeouts"]
        # The center recorded an inquiry whose answer was lost and later replayed it for the same key.
        assert after["duplicates_suppressed"] > before["duplicates_suppressed"]
    print(f"\n[{fault}] completed {recovery:.1f} s after the fault was cleared")


def _clear(center: Simulator, fault: str, fault_on: float) -> None:
    if fault != "connections_refused":
        center.clear_faults()
        return
    # While refusing, the simulator's control endpoint is unreachable too: wait out the window.
    time.sleep(max(0.0, fault_on + REFUSAL_SECONDS - time.monotonic()))

    def cleared() -> bool:
        try:
            center.clear_faults()
        except httpx.TransportError:
            return False
        return True

    wait_for(cleared, timeout=10, what="the simulator to accept connections again")


def _assert_outbox_retried(gateway: Gateway, ids: list[str]) -> None:
    db = GatewayDatabase("sqlite", gateway.root)
    placeholders = ", ".join(f"'{i}'" for i in ids)
    rows = db.rows(
        "SELECT attempts, last_error, delivered_at FROM center_outbox "
        f"WHERE kind = 'inquire' AND inquiry_id IN ({placeholders})"
    )
    assert len(rows) == len(ids)
    assert all(delivered_at for _, _, delivered_at in rows), "every row delivered"
    # At least the first of them met the fault, and the outbox kept it and tried again later.
    assert any(int(attempts) >= 2 and "the center is unavailable" in error for attempts, error, _ in rows)
