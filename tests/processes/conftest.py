"""Fixtures for the process tests: a center simulator process and a fresh database per gateway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes.support import GatewayDatabase, Simulator, running_simulator
from tests.support.pgserver import PostgresServer


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Simulator]:
    with running_simulator(tmp_path) as sim:
        yield sim


@pytest.fixture
def gateway_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GatewayDatabase]:
    """SQLite in the gateway's data dir, or an empty PostgreSQL database of its own (``shokai demo``
    seeds an empty database). The gateway of the test lives in ``tmp_path / "gateway"``."""
    root = tmp_path / "gateway"
    if backend == "sqlite":
        yield GatewayDatabase(backend, root)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"proc_{uuid.uuid4().hex[:12]}"
    server.create_database(name)
    try:
        yield GatewayDatabase(backend, root, {"SHOKAI_DATABASE_URL": server.dsn(name)}, server, name)
    finally:
        server.drop_database(name)
