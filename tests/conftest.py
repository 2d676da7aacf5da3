"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server is started once per test session by tests/support/pgserver.py (initdb as a
non-root user, a free loopback port). Each test gets a fresh database: a copy of a migrated
template (CREATE DATABASE ... TEMPLATE on PostgreSQL, a file copy on SQLite).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.center.simulator.population import (
    DEFAULT_POPULATION_SIZE,
    DEFAULT_SEED,
    Population,
    generate_population,
)
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring, new_key_document
from app.demo import DemoCredentials, seed_demo
from app.main import build_context, create_app
from app.migrate import upgrade
from tests.support.pgserver import PostgresServer

# The shared helpers assert too (a refusal's code, a login's status): rewritten like the test modules, so
# a failure there says what it saw instead of a bare AssertionError. Before any test module imports them.
pytest.register_assert_rewrite(
    "tests.helpers", "tests.governance.support", "tests.inquiry.support", "tests.panel.support"
)

BACKENDS = ("sqlite", "postgresql")
_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sqlite-only", action="store_true", help="run database tests on SQLite only (quick local loop)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"] if metafunc.config.getoption("--sqlite-only") else list(BACKENDS)
        metafunc.parametrize("backend", backends, scope="function")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresServer) -> str:
    pg_server.create_database("shokai_template")
    upgrade(pg_server.dsn("shokai_template"))
    return "shokai_template"


@pytest.fixture(scope="session")
def sqlite_template() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shokai-sqlite-template-"))
    path = directory / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    yield path
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "shokai.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"t_{next(_counter)}_{abs(hash(request.node.nodeid)) % 10**8}"
    server.create_database(name, template=template_name)
    yield server.dsn(name)
    server.drop_database(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def keyring(clock: ManualClock) -> Keyring:
    return Keyring(new_key_document(clock.now()))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Cheap Argon2 parameters keep the suite fast; test_passwords.py checks the production defaults.
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        cookie_secure=False,
    )


@pytest.fixture(scope="session")
def center_population() -> Population:
    """The simulator's synthetic population, generated once (it is immutable)."""
    return generate_population(seed=DEFAULT_SEED, size=DEFAULT_POPULATION_SIZE)


@pytest.fixture
async def ctx(
    settings: Settings, clock: ManualClock, keyring: Keyring, center_population: Population
) -> AsyncIterator[AppContext]:
    context = build_context(settings, clock=clock, keyring=keyring, population=center_population)
    yield context
    await context.db.dispose()


@pytest.fixture
def app(ctx: AppContext) -> Any:
    return create_app(context=ctx, background_tasks=False)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:
        yield http


@pytest.fixture
async def demo(ctx: AppContext) -> DemoCredentials:
    return await seed_demo(ctx)
