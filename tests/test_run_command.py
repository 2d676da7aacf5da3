"""The README's run path: `shokai demo` then `shokai serve` as real processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.pgserver import PostgresServer

REQUIRED_ROLES = {
    "operator",
    "confirmer",
    "branch_manager",
    "hq_operator",
    "hq_confirmer",
    "auditor",
    "access_admin",
    "access_approver",
    "security_officer",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _shokai(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def _serving(data_dir: Path, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            process.kill()
            pytest.fail(f"gateway did not start: {process.communicate()[0]}")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _check_demo_and_logins(credentials: dict, base: str) -> None:  # type: ignore[type-arg]
    roles = {role for u in credentials["users"] for role in u["roles"]}
    assert REQUIRED_ROLES <= roles
    branches = {t["branch_code"] for t in credentials["terminals"]}
    assert {"000", "001", "002"} <= branches
    for code in branches:
        assert sum(t["branch_code"] == code for t in credentials["terminals"]) >= 2
    assert credentials["service_accounts"][0]["client_secret"]

    operator = next(
        u for u in credentials["users"] if "operator" in u["roles"] and u["branch_codes"] == ["001"]
    )
    term = next(t for t in credentials["terminals"] if t["branch_code"] == "001")
    headers = {"X-Terminal-Id": term["id"], "X-Terminal-Key": term["key"]}
    body = {"user_id": operator["id"], "password": operator["password"]}
    first = httpx.post(f"{base}/api/v1/auth/login", json=body, headers=headers, timeout=10)
    assert first.status_code == 200, first.text
    assert first.json()["previous_login"] is None
    assert first.json()["must_change_password"] is False
    second = httpx.post(f"{base}/api/v1/auth/login", json=body, headers=headers, timeout=10).json()
    assert second["previous_login"]["terminal_id"] == term["id"]

    service = credentials["service_accounts"][0]
    token = httpx.post(
        f"{base}/api/v1/auth/token",
        json={"client_id": service["client_id"], "client_secret": service["client_secret"]},
        timeout=10,
    )
    assert token.status_code == 200 and token.json()["scopes"] == sorted(service["scopes"])


def test_demo_then_serve_on_sqlite(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    creds_file = tmp_path / "logins.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    created = _shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(creds_file), env=env)
    assert created.returncode == 0, created.stderr
    assert (data_dir / "keys.json").stat().st_mode & 0o777 == 0o600
    assert creds_file.stat().st_mode & 0o777 == 0o600
    credentials = json.loads(creds_file.read_text(encoding="utf-8"))
    with _serving(data_dir, env) as base:
        _check_demo_and_logins(credentials, base)
    recreated = _shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(creds_file), env=env)
    assert recreated.returncode == 0, recreated.stderr
    assert (
        json.loads(creds_file.read_text(encoding="utf-8"))["users"][0]["password"]
        != credentials["users"][0]["password"]
    )


def test_database_url_switches_serve_to_postgresql(tmp_path: Path, pg_server: PostgresServer) -> None:
    pg_server.create_database("run_command")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    env["SHOKAI_DATABASE_URL"] = pg_server.dsn("run_command")
    data_dir = tmp_path / "instance"
    creds_file = tmp_path / "logins.json"
    created = _shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(creds_file), env=env)
    assert created.returncode == 0, created.stderr
    assert not (data_dir / "shokai.db").exists()
    credentials = json.loads(creds_file.read_text(encoding="utf-8"))
    with _serving(data_dir, env) as base:
        _check_demo_and_logins(credentials, base)
    users = pg_server.psql("SELECT count(*) FROM users", database="run_command")
    assert int(users) == len(credentials["users"])
