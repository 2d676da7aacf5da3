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


def test_it_refuses_nonsense_settings(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0, cool_down=timedelta(seconds=1), clock=clock)
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=1, cool_down=timedelta(0), clock=clock)
