"""Fixtures for the center-link tests (ER-3, RC-1, PL-2): a shared population, a fresh simulator per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.center.simulator import create_simulator_app, simulator_transport
from app.center.simulator.population import Population, generate_population
from app.clock import ManualClock


@pytest.fixture(scope="session")
def population() -> Population:
    # The population is immutable, so every simulator in the session can share one (it takes ~0.7 s).
    return generate_population()


@pytest.fixture
def sim_app(population: Population, clock: ManualClock) -> FastAPI:
    return create_simulator_app(clock=clock, population=population)


@pytest.fixture
async def center(sim_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=simulator_transport(sim_app), base_url="http://center.test/center/v1"
    ) as client:
        yield client
