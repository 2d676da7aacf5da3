"""LG-4: the center link going down and coming back is recorded in the ledger, once each.

A down is the circuit breaker opening after repeated failures; an up is the first call that gets
through again. The trial calls in between are counted on the up, not recorded one by one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app.center.http_adapter import CenterLinkSettings, HttpCenterLink
from app.center.interface import CenterUnavailable
from app.center.simulator import simulator_state, simulator_transport
from app.center.simulator.population import Population
from app.center.simulator.schemas import FaultSettings
from app.clock import ManualClock, rfc3339
from app.context import AppContext
from app.monitoring.center_link import CenterLinkWatch
from tests.center.support import inquiry_request
from tests.helpers import ledger_events

COOL_DOWN = 30.0


async def _no_sleep(_seconds: float) -> None:
    return None


def _details(event: Any) -> dict[str, Any]:
    return dict(json.loads(event.details))


async def _link_events(ctx: AppContext) -> list[tuple[str, dict[str, Any]]]:
    events = [e for e in await ledger_events(ctx) if e.action.startswith("center_link.")]
    return [(e.action, _details(e)) for e in events]


async def test_down_and_up_are_recorded_with_the_outage_and_its_failed_trials(
    ctx: AppContext, clock: ManualClock, center_population: Population
) -> None:
    simulator = simulator_state(ctx.center_simulator)
    settings = CenterLinkSettings(
        base_url="http://center.test",
        member_code=ctx.settings.center_member_code,
        max_attempts=2,
        breaker_failure_threshold=2,
        breaker_cool_down_seconds=COOL_DOWN,
    )
    link = HttpCenterLink(
        settings, clock=clock, transport=simulator_transport(ctx.center_simulator), sleep=_no_sleep
    )
    watch = CenterLinkWatch(ctx)
    link.watch_state(watch.state_changed)
    person = center_population[0]

    def request(key: str) -> Any:
        return inquiry_request(person, key=key, member_code=ctx.settings.center_member_code)

    async with link:
        simulator.faults.apply(FaultSettings(error_rate=1.0))
        with pytest.raises(CenterUnavailable):
            await link.inquire(request("status-1"))  # two failed attempts: the breaker opens
        down_at = clock.now()
        with pytest.raises(CenterUnavailable, match="circuit_open"):
            await link.inquire(request("status-2"))  # refused without a call: still the same outage
        clock.advance(seconds=COOL_DOWN)
        with pytest.raises(CenterUnavailable):
            await link.inquire(request("status-3"))  # the trial call fails: open again
        clock.advance(seconds=COOL_DOWN)
        simulator.faults.clear()
        answer = await link.inquire(request("status-4"))  # the next trial gets through
        assert answer.result in ("found", "no_trade_info")
        up_at = clock.now()

    assert watch.queued == 2
    assert await _link_events(ctx) == []  # nothing written from inside the calls
    assert await watch.flush() == 2
    assert await _link_events(ctx) == [
        ("center_link.down", {"state": "open", "changed_at": rfc3339(down_at)}),
        (
            "center_link.up",
            {
                "down_seconds": 2 * COOL_DOWN,
                "failed_trials": 1,
                "changed_at": rfc3339(up_at),
            },
        ),
    ]
    assert await watch.flush() == 0  # each change is written once


async def test_the_running_gateway_records_its_link_status_and_flushes_it_before_stopping(
    app: Any, ctx: AppContext, clock: ManualClock, center_population: Population
) -> None:
    simulator = simulator_state(ctx.center_simulator)
    person = center_population[1]
    member = ctx.settings.center_member_code
    async with app.router.lifespan_context(app):
        simulator.faults.apply(FaultSettings(error_rate=1.0))
        for key in ("gw-1", "gw-2"):  # 3 + 2 failed attempts reach the default threshold of 5
            with pytest.raises(CenterUnavailable):
                await ctx.center.inquire(inquiry_request(person, key=key, member_code=member))
        assert ctx.center.state == "open"
        simulator.faults.clear()
        clock.advance(seconds=ctx.settings.center_breaker_cooldown_seconds)
        await ctx.center.inquire(inquiry_request(person, key="gw-3", member_code=member))
        assert ctx.center.state == "closed"
    events = await ledger_events(ctx)
    actions = [e.action for e in events if e.action.startswith(("center_link.", "system."))]
    assert actions == ["system.started", "center_link.down", "center_link.up", "system.stopped"]
    up = next(e for e in events if e.action == "center_link.up")
    assert _details(up)["down_seconds"] == ctx.settings.center_breaker_cooldown_seconds


async def test_close_writes_what_is_queued_once_and_stops_the_writer(
    ctx: AppContext, clock: ManualClock
) -> None:
    watch = CenterLinkWatch(ctx)
    writer = asyncio.create_task(watch.run_forever())
    watch.state_changed("closed", "open")
    clock.advance(seconds=12)
    watch.state_changed("open", "half_open")
    watch.state_changed("half_open", "open")
    watch.state_changed("open", "closed")
    await watch.close(writer)
    assert writer.done() and watch.queued == 0
    events = await _link_events(ctx)
    assert [action for action, _ in events] == ["center_link.down", "center_link.up"]
    assert events[1][1]["down_seconds"] == 12 and events[1][1]["failed_trials"] == 1


async def test_a_database_that_does_not_answer_does_not_hold_the_shutdown(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    watch = CenterLinkWatch(ctx)

    async def never_answers() -> int:
        await asyncio.Event().wait()
        return 0

    monkeypatch.setattr(watch, "flush", never_answers)
    writer = asyncio.create_task(watch.run_forever())
    watch.state_changed("closed", "open")
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    await watch.close(writer, within=0.2)
    assert asyncio.get_running_loop().time() - started < 2
    assert writer.cancelled()
    assert "1 center link status changes not recorded at the stop" in caplog.text


async def test_close_after_the_writer_already_ended_does_not_break_the_shutdown(ctx: AppContext) -> None:
    watch = CenterLinkWatch(ctx)
    writer = asyncio.create_task(watch.run_forever())
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    await watch.close(writer)  # returns, raises nothing
