"""The center link's circuit breaker (ER-3, LG-4): closed → open → half-open on the injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.center.circuit import CircuitBreaker, CircuitOpen, CircuitState
from app.clock import ManualClock


@pytest.fixture
def transitions() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def breaker(clock: ManualClock, transitions: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3,
        cool_down=timedelta(seconds=30),
        clock=clock,
        on_state_change=lambda before, after: transitions.append((before.value, after.value)),
    )


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_it_opens_after_the_threshold_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    _fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()
    breaker.record_success()  # a success in between resets the count
    _fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    _fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == pytest.approx(30)


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_it(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[tuple[str, str]]
) -> None:
    _fail(breaker, 3)
    clock.advance(seconds=29)
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == pytest.approx(1)
    clock.advance(seconds=1)
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    breaker.before_call()
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_opens_it_for_another_cool_down(breaker: CircuitBreaker, clock: ManualClock) -> None:
    _fail(breaker, 3)
    clock.advance(seconds=30)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.advance(seconds=29)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(seconds=1)
    breaker.before_call()
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_probe_that_never_reports_back_does_not_wedge_it(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    _fail(breaker, 3)
    clock.advance(seconds=30)
    breaker.before_call()  # the probe's task is cancelled and never reports
    clock.advance(seconds=30)
    breaker.before_call()  # a new probe is allowed
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_calls_in_flight_failing_late_do_not_push_the_cool_down_out(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[tuple[str, str]]
) -> None:
    in_flight = [breaker.before_call() for _ in range(6)]  # six calls out when the center goes away
    for epoch in in_flight[:3]:
        breaker.record_failure(epoch)
    assert breaker.state is CircuitState.OPEN
    clock.advance(seconds=20)
    for epoch in in_flight[3:]:
        breaker.record_failure(epoch)  # the rest time out later: the same outage
    clock.advance(seconds=10)
    assert breaker.state is CircuitState.HALF_OPEN  # 30 s from the opening, not from the last failure
    assert transitions == [("closed", "open")]


def test_a_late_failure_from_before_the_opening_does_not_shut_the_probe(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    in_flight = [breaker.before_call() for _ in range(4)]
    for epoch in in_flight[:3]:
        breaker.record_failure(epoch)
    clock.advance(seconds=30)
    probe = breaker.before_call()
    breaker.record_failure(in_flight[3])  # an old call gives up while the probe is out
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # still the one probe
    assert probe != in_flight[3]
    breaker.record_success()  # the probe's answer decides
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure(in_flight[0])  # and news from the old outage changes nothing now either
    assert breaker.consecutive_failures == 0


def test_a_failed_probe_still_reopens_it(breaker: CircuitBreaker, clock: ManualClock) -> None:
    _fail(breaker, 3)
    clock.advance(seconds=30)
    probe = breaker.before_call()
    breaker.record_failure(probe)
    assert breaker.state is CircuitState.OPEN


def test_a_failing_listener_neither_breaks_the_call_nor_silences_the_others(clock: ManualClock) -> None:
    def broken(_before: CircuitState, _after: CircuitState) -> None:
        raise RuntimeError("a bug in a listener")

    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        failure_threshold=1, cool_down=timedelta(seconds=30), clock=clock, on_state_change=broken
    )
    stop = breaker.add_listener(lambda before, after: seen.append((before.value, after.value)))
    breaker.record_failure(breaker.before_call())  # raises nothing
    assert breaker.state is CircuitState.OPEN
    assert seen == [("closed", "open")]
    stop()
    clock.advance(seconds=30)
    breaker.before_call()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert seen == [("closed", "open")]  # a removed listener hears nothing more


def test_it_refuses_nonsense_settings(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0, cool_down=timedelta(seconds=1), clock=clock)
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=1, cool_down=timedelta(0), clock=clock)
