"""Fault injection for the center simulator: latency, 503s, timeouts, refused connections (ER-3).

What each fault does to a request for the center's endpoints (``/center/v1/...`` except ``/_sim/``):

* ``latency_ms`` — the request waits that long before the center handles it.
* ``error_rate`` — that share of requests is answered 503 *before* the center looks at it.
* ``timeout_rate`` — that share is processed and recorded by the center, and its answer is thrown
  away; the connection then stays silent for ``timeout_ms`` (set it longer than the client's read
  timeout) before a 504. The client sees a timeout for an inquiry the center *did* record — the case
  that retrying on the same idempotency key must turn into one recorded inquiry.
* ``refuse_connections_seconds`` — the center stops accepting connections for that long.
  As a separate process (server.py) the TCP front really closes its listening socket, so connects
  fail with ECONNREFUSED, and drops open keep-alive connections. In-process, :class:`SimulatorTransport`
  raises ``httpx.ConnectError`` for center requests; over a plain ``httpx.ASGITransport`` the request
  reaches the app and gets a 503 instead. In every shape, a request that still arrives during the
  window (an old keep-alive connection) gets a 503, so the client always sees a transient failure.

Which requests fail is drawn from ``random.Random`` seeded with the simulator seed and the fault
``seed``: the same sequence of requests meets the same sequence of faults.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.center.simulator.schemas import FaultSettings
from app.clock import Clock

CENTER_PREFIX = "/center/v1/"
CONTROL_PREFIX = "/center/v1/_sim/"


def is_center_path(path: str) -> bool:
    """Faults apply to the center's contract, never to the simulator's own control endpoints."""
    return path.startswith(CENTER_PREFIX) and not path.startswith(CONTROL_PREFIX)


@dataclass(frozen=True)
class FaultDecision:
    outcome: Literal["pass", "error", "timeout", "refused"]
    latency_seconds: float = 0.0
    timeout_seconds: float = 0.0


class FaultPlan:
    """The faults in force and the deterministic draw of which request meets which."""

    def __init__(self, *, seed: int, clock: Clock) -> None:
        self._base_seed = seed
        self._clock = clock
        self.settings = FaultSettings()
        self._rng = self._new_rng(self.settings)
        self._refusing_until: datetime | None = None
        self.center_requests = 0
        self.faulted_errors = 0
        self.faulted_timeouts = 0
        self.refused_requests = 0

    def _new_rng(self, settings: FaultSettings) -> random.Random:
        # Simulated faults, not security: a reproducible sequence is the point.
        return random.Random(f"{self._base_seed}:{settings.seed}")  # noqa: S311

    def apply(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = self._new_rng(settings)
        seconds = settings.refuse_connections_seconds
        self._refusing_until = self._clock.now() + timedelta(seconds=seconds) if seconds > 0 else None

    def clear(self) -> None:
        self.apply(FaultSettings())

    def refusing(self) -> bool:
        return self._refusing_until is not None and self._clock.now() < self._refusing_until

    def decide(self) -> FaultDecision:
        """Called once per center request; advances the fault sequence."""
        if self.refusing():
            self.refused_requests += 1
            return FaultDecision("refused")
        self.center_requests += 1
        settings = self.settings
        latency = settings.latency_ms / 1000
        if settings.error_rate == 0 and settings.timeout_rate == 0:
            return FaultDecision("pass", latency)
        draw = self._rng.random()
        if draw < settings.error_rate:
            self.faulted_errors += 1
            return FaultDecision("error", latency)
        if draw < settings.error_rate + settings.timeout_rate:
            self.faulted_timeouts += 1
            return FaultDecision("timeout", latency, settings.timeout_ms / 1000)
        return FaultDecision("pass", latency)


class ConnectionFront(Protocol):
    """Something accepting the simulator's connections that can stop and resume (server.py's front)."""

    def refuse_for(self, seconds: float) -> None: ...

    def reopen(self) -> None: ...


class ConnectionGate:
    """Passes "refuse connections" from the control endpoint to whatever accepts connections.

    In-process there is no front and the gate does nothing; the FaultPlan's window is then enforced by
    :class:`SimulatorTransport` and the middleware.
    """

    def __init__(self) -> None:
        self._fronts: list[ConnectionFront] = []

    def attach(self, front: ConnectionFront) -> None:
        self._fronts.append(front)

    def refuse_for(self, seconds: float) -> None:
        for front in self._fronts:
            front.refuse_for(seconds)

    def reopen(self) -> None:
        for front in self._fronts:
            front.reopen()


class FaultInjection:
    """ASGI middleware applying the FaultPlan to the center's endpoints."""

    def __init__(self, app: ASGIApp, *, faults: FaultPlan) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_center_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        decision = self.faults.decide()
        if decision.outcome == "refused":
            await _send_problem(send, 503, "CENTER_UNAVAILABLE", "The center is not accepting connections")
            return
        if decision.latency_seconds:
            await asyncio.sleep(decision.latency_seconds)
        if decision.outcome == "error":
            await _send_problem(send, 503, "CENTER_UNAVAILABLE", "The center is temporarily unavailable")
            return
        if decision.outcome == "timeout":
            await self.app(scope, receive, _discard)
            await asyncio.sleep(decision.timeout_seconds)
            await _send_problem(send, 504, "CENTER_TIMEOUT", "The center answered too late")
            return
        await self.app(scope, receive, send)


async def _discard(message: Message) -> None:
    """The lost answer of a timed-out request."""


async def _send_problem(send: Send, status: int, code: str, detail: str) -> None:
    body = orjson.dumps(
        {
            "type": f"urn:center:problem:{code.lower()}",
            "title": detail,
            "status": status,
            "detail": detail,
            "code": code,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SimulatorTransport(httpx.ASGITransport):
    """``httpx.ASGITransport`` for the in-process simulator that turns a refusal window into
    ``httpx.ConnectError``, as a real refused TCP connection would (control endpoints stay reachable)."""

    def __init__(self, app: ASGIApp, *, faults: FaultPlan) -> None:
        super().__init__(app=app)
        self._faults = faults

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if is_center_path(request.url.path) and self._faults.refusing():
            self._faults.refused_requests += 1
            raise httpx.ConnectError("connection refused (simulated)", request=request)
        return await super().handle_async_request(request)
