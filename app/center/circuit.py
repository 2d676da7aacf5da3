"""A circuit breaker for the center link (ER-3, LG-4).

When the center is down, every queued inquiry retrying at once would only add load and make each
terminal wait for its own timeout. The breaker fails those calls at once instead:

* ``closed`` — calls pass; ``failure_threshold`` consecutive transient failures open it.
* ``open`` — calls are refused without touching the network until ``cool_down`` has passed.
* ``half_open`` — one probe call is let through; its success closes the breaker, its failure opens it
  for another cool-down. Other calls are refused while the probe is out.

Each opening starts a new epoch, and ``before_call`` hands the caller the epoch its call starts in. A
failure reported with an epoch the breaker has already left is old news about an outage it has acted
on — calls that were in flight when it opened, timing out one by one — and changes nothing: otherwise
each of them pushed the cool-down further out, or shut a half-open breaker on its probe.

Time comes from the injected clock (design.md: no ``datetime.now()``), so tests move it by hand. The
class does no I/O and never awaits, so in one event loop its state changes cannot interleave.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from app.clock import Clock

log = logging.getLogger("shokai.center")


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """The breaker refused a call; ``retry_after`` is the seconds until it lets one through."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; retry after {retry_after:.1f} s")
        self.retry_after = retry_after


StateListener = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int,
        cool_down: timedelta,
        clock: Clock,
        on_state_change: StateListener | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cool_down <= timedelta(0):
            raise ValueError("cool_down must be positive")
        self._threshold = failure_threshold
        self._cool_down = cool_down
        self._clock = clock
        self._listeners: list[StateListener] = [on_state_change] if on_state_change is not None else []
        self._failures = 0
        self._opened_at: datetime | None = None
        # When the half-open probe was let out; a probe that never reports back (its task was
        # cancelled) must not wedge the breaker, so the permit lapses after one cool-down.
        self._probe_started_at: datetime | None = None
        self._epoch = 0
        self._reported = CircuitState.CLOSED

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock.now() - self._opened_at >= self._cool_down:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def add_listener(self, listener: StateListener) -> Callable[[], None]:
        """Also tell ``listener(previous, current)`` of every state change (called synchronously);
        returns the call that removes it again."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def before_call(self) -> int:
        """Ask to make a call; raises :class:`CircuitOpen` when the breaker says no. Returns the epoch
        the call starts in, for :meth:`record_failure`."""
        now = self._clock.now()
        state = self.state
        self._notify(state)
        if state is CircuitState.CLOSED:
            return self._epoch
        if state is CircuitState.HALF_OPEN:
            probe_out = self._probe_started_at is not None and now - self._probe_started_at < self._cool_down
            if not probe_out:
                self._probe_started_at = now
                return self._epoch
            raise CircuitOpen(self._cool_down.total_seconds())
        assert self._opened_at is not None
        raise CircuitOpen((self._opened_at + self._cool_down - now).total_seconds())

    def record_success(self) -> None:
        """The center answered (even with a refusal): it is up."""
        self._failures = 0
        self._opened_at = None
        self._probe_started_at = None
        self._notify(CircuitState.CLOSED)

    def record_failure(self, epoch: int | None = None) -> None:
        """A transient failure: a timeout, a refused connection, a 5xx. ``epoch`` is what
        :meth:`before_call` returned for the call; a failure from before the latest opening is ignored."""
        if epoch is not None and epoch != self._epoch:
            return
        self._failures += 1
        was_probe = self._probe_started_at is not None
        if was_probe or self._failures >= self._threshold:
            self._opened_at = self._clock.now()
            self._probe_started_at = None
            self._epoch += 1
        self._notify(self.state)

    def _notify(self, state: CircuitState) -> None:
        if state is self._reported:
            return
        previous, self._reported = self._reported, state
        for listener in list(self._listeners):
            try:
                listener(previous, state)
            except Exception:
                # A listener runs inside a center call: its bug must not cost the call (or its answer).
                log.exception("a circuit breaker listener failed")
