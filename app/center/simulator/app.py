"""``create_simulator_app()``: the bundled credit center as its own FastAPI app (RC-1, ER-3, PL-2).

Mounted in-process by the embedded gateway (through :func:`simulator_transport`) or run as a separate
process by server.py. Errors are problem JSON with a stable ``code``: ``NO_TRADE_INFO`` (PL-2),
``VALIDATION`` (the body does not fit the contract; the input is never echoed back),
``IDEMPOTENCY_KEY_REUSED``, ``NOT_FOUND``, ``CENTER_UNAVAILABLE`` / ``CENTER_TIMEOUT`` (injected faults).
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.center.simulator.faults import ConnectionGate, FaultInjection, FaultPlan, SimulatorTransport
from app.center.simulator.population import (
    DEFAULT_POPULATION_SIZE,
    DEFAULT_SEED,
    Population,
    generate_population,
)
from app.center.simulator.router import control_router, router
from app.center.simulator.service import CenterProblem, SimulatedCenter
from app.center.simulator.state import SimulatorState
from app.clock import Clock, SystemClock

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A path the center does not serve is not the contract's NOT_FOUND (no such inquiry): the gateway must
# not take a wrong base URL for an answer (CENTER_ANSWER_CODES).
_HTTP_CODES = {404: "UNKNOWN_PATH", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


def create_simulator_app(
    *,
    seed: int = DEFAULT_SEED,
    population_size: int = DEFAULT_POPULATION_SIZE,
    clock: Clock | None = None,
    population: Population | None = None,
) -> FastAPI:
    """A fresh simulated center. ``population`` reuses an already generated one (it is immutable)."""
    clock = clock or SystemClock()
    if population is None:
        population = generate_population(seed=seed, size=population_size)
    faults = FaultPlan(seed=seed, clock=clock)
    state = SimulatorState(
        seed=seed,
        clock=clock,
        population=population,
        center=SimulatedCenter(population=population, clock=clock),
        faults=faults,
        gate=ConnectionGate(),
    )
    app = FastAPI(
        title="Shokai center simulator",
        version="1",
        summary="A synthetic personal credit information center speaking the center-link contract",
        docs_url="/center/v1/_sim/docs",
        openapi_url="/center/v1/_sim/openapi.json",
        redoc_url=None,
    )
    app.state.simulator = state
    app.include_router(router)
    app.include_router(control_router)
    app.add_middleware(FaultInjection, faults=faults)
    _install_error_handlers(app)
    return app


def simulator_state(app: FastAPI) -> SimulatorState:
    state: SimulatorState = app.state.simulator
    return state


def simulator_transport(app: FastAPI) -> httpx.AsyncBaseTransport:
    """The transport that mounts the simulator in-process, refusal windows included (faults.py)."""
    return SimulatorTransport(app, faults=simulator_state(app).faults)


def problem_response(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:center:problem:{code.lower().replace('_', '-')}",
        "title": detail,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CenterProblem)
        return problem_response(exc.status, exc.code, exc.detail, **exc.extra)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # Where and what kind of error only: the input may hold a person's name.
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "type": error.get("type")}
            for error in exc.errors()
        ]
        return problem_response(
            422, "VALIDATION", "The request does not fit the center's contract", errors=errors
        )

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        return problem_response(exc.status_code, code, str(exc.detail))

    app.add_exception_handler(CenterProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
