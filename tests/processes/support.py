"""Real processes for the process tests: the center simulator, a gateway, and a terminal talking HTTP.

The simulator runs as ``shokai center-sim`` and the gateway as ``shokai demo`` then ``shokai serve``
(all through ``python -m app.cli``), each its own process on a free loopback port, exactly as an
operator would start them. Their output goes to files, never to an unread pipe (a full pipe would
stall a busy server). Every process is killed in ``finally``: no test leaves one behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.pgserver import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMBER_CODE = "M0001"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(**overrides: str) -> dict[str, str]:
    """This interpreter's environment without any SHOKAI_ setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    env["PYTHONUNBUFFERED"] = "1"
    # Cheap Argon2 keeps logins fast; the hash format carries its parameters, so nothing else changes.
    env["SHOKAI_ARGON2_MEMORY_KIB"] = "1024"
    env["SHOKAI_ARGON2_TIME_COST"] = "1"
    env.update(overrides)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for(
    check: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str = "a condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


async def wait_for_async(
    check: Callable[[], Awaitable[T | None]], *, within: float, interval: float = 0.25, what: str = ""
) -> T:
    """Await ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what or 'a condition'}")
        await asyncio.sleep(interval)


# -- the center simulator ---------------------------------------------------------------------------------


class Simulator:
    """``shokai center-sim`` as its own process, and its control endpoints."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"simulator-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "center-sim", "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=process_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the simulator exited:\n{_tail(self.log_path)}")
            try:
                return httpx.get(f"{self.url}/center/v1/_sim/stats", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=30, interval=0.05, what="the simulator to listen")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    # control endpoints (the test's side door; the gateway never uses them)

    def faults(self, **settings: Any) -> None:
        response = httpx.post(f"{self.url}/center/v1/_sim/faults", json=settings, timeout=5)
        assert response.status_code == 200, response.text

    def clear_faults(self) -> None:
        response = httpx.delete(f"{self.url}/center/v1/_sim/faults", timeout=5)
        assert response.status_code == 204, response.text

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/center/v1/_sim/stats", timeout=5).json())

    def people(self, count: int, *, offset: int = 0) -> list[dict[str, Any]]:
        people: list[dict[str, Any]] = []
        while len(people) < count:
            page = httpx.get(
                f"{self.url}/center/v1/_sim/population",
                params={"offset": offset + len(people), "limit": min(1000, count - len(people))},
                timeout=10,
            ).json()
            people.extend(page["items"])
        return people

    def record(self, member_code: str = MEMBER_CODE) -> list[dict[str, Any]]:
        """The center's own inquiry record for the member (what reconciliation reads), all pages."""
        today = date.today()
        params: dict[str, Any] = {
            "member_code": member_code,
            "from": (today - timedelta(days=2)).isoformat(),
            "to": (today + timedelta(days=2)).isoformat(),
            "limit": 1000,
        }
        entries: list[dict[str, Any]] = []
        while True:
            response = httpx.get(f"{self.url}/center/v1/inquiry-record", params=params, timeout=10)
            assert response.status_code == 200, response.text
            page = response.json()
            entries.extend(page["items"])
            if not page.get("next_cursor"):
                return entries
            params["cursor"] = page["next_cursor"]

    def inquiries_per_key(self, member_code: str = MEMBER_CODE) -> Counter[str]:
        return Counter(e["idempotency_key"] for e in self.record(member_code) if e["kind"] == "inquiry")


@contextmanager
def running_simulator(log_dir: Path) -> Iterator[Simulator]:
    simulator = Simulator(log_dir)
    try:
        simulator.start()
        yield simulator
    finally:
        simulator.stop()


# -- the gateway ------------------------------------------------------------------------------------------


class Gateway:
    """One gateway instance: ``shokai demo`` once, then ``shokai serve`` as often as a test needs."""

    def __init__(self, root: Path, *, env: dict[str, str]) -> None:
        self.root = root
        self.data_dir = root / "instance"
        self.credentials_path = root / "logins.json"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.credentials: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"

    @property
    def log_path(self) -> Path:
        return self.root / f"gateway-{self.starts}.log"

    def demo(self, *extra: str) -> None:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "demo",
                "--data-dir",
                str(self.data_dir),
                "--credentials-out",
                str(self.credentials_path),
                *extra,
            ],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        self.credentials = json.loads(self.credentials_path.read_text(encoding="utf-8"))

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the gateway exited:\n{_tail(self.log_path)}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=60, interval=0.1, what="the gateway to listen")

    def kill(self) -> None:
        """kill -9: no shutdown hook, no flush, no goodbye (``shokai serve`` runs uvicorn in-process)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def user(self, user_id: str) -> dict[str, Any]:
        return dict(next(u for u in self.credentials["users"] if u["id"] == user_id))

    def password(self, user_id: str) -> str:
        return str(self.user(user_id)["password"])

    def terminal_for(self, user_id: str) -> dict[str, Any] | None:
        branches = self.user(user_id)["branch_codes"]
        if not branches:
            return None
        return dict(next(t for t in self.credentials["terminals"] if t["branch_code"] == branches[0]))


@contextmanager
def gateway_instance(
    root: Path, *, env: dict[str, str], demo_args: tuple[str, ...] = ()
) -> Iterator[Gateway]:
    gateway = Gateway(root, env=env)
    try:
        gateway.demo(*demo_args)
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


@dataclass
class GatewayDatabase:
    """The database a gateway process uses, and a side door for the test to read it as an auditor would."""

    backend: str
    gateway_root: Path
    env: dict[str, str] = field(default_factory=dict)
    server: PostgresServer | None = None
    name: str = ""

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        """Rows of ``sql`` with every value as text (psql -At on PostgreSQL, sqlite3 on SQLite)."""
        if self.server is not None:
            out = self.server.psql(sql, database=self.name)
            return [tuple(line.split("|")) for line in out.splitlines() if line]
        path = self.gateway_root / "instance" / "shokai.db"
        with closing(sqlite3.connect(path, timeout=30)) as connection:
            return [tuple("" if v is None else str(v) for v in row) for row in connection.execute(sql)]


# -- a branch terminal over HTTP --------------------------------------------------------------------------


def draft_body(subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "new_credit",
        "customer_status": "new",
        "subject": {
            "name_kana": subject["name_kana"],
            "name_kanji": subject.get("name_kanji"),
            "birth_date": subject["birth_date"],
            "address": subject.get("address"),
        },
        "consent_document": {
            "type": "loan_application",
            "reference": "LA-2026-000123",
            "obtained_on": date.today().isoformat(),
        },
    }
    body.update(overrides)
    return body


class Desk:
    """What the staff at a terminal do, over real HTTP: log in, enter, approve, submit, release, read."""

    def __init__(self, gateway: Gateway, http: httpx.AsyncClient) -> None:
        self.gateway = gateway
        self.http = http
        self._headers: dict[str, dict[str, str]] = {}

    async def login(self, user_id: str) -> dict[str, str]:
        term = self.gateway.terminal_for(user_id)
        headers = {"X-Terminal-Id": term["id"], "X-Terminal-Key": term["key"]} if term else {}
        response = await self.http.post(
            f"{self.gateway.api}/auth/login",
            json={"user_id": user_id, "password": self.gateway.password(user_id)},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
        if term:
            auth["X-Terminal-Id"] = term["id"]
        self._headers[user_id] = auth
        return auth

    async def as_(self, user_id: str) -> dict[str, str]:
        return self._headers.get(user_id) or await self.login(user_id)

    def forget_sessions(self) -> None:
        self._headers.clear()

    async def call(self, method: str, path: str, user_id: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(
            method, f"{self.gateway.api}{path}", headers=await self.as_(user_id), **kwargs
        )

    async def draft(self, operator: str, subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        response = await self.call("POST", "/inquiries", operator, json=draft_body(subject, **overrides))
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def approval_number(self, confirmer: str, inquiry_id: str) -> str:
        response = await self.call("POST", f"/inquiries/{inquiry_id}/approval-numbers", confirmer, json={})
        assert response.status_code == 201, response.text
        return str(response.json()["approval_number"])

    async def submit(self, operator: str, inquiry_id: str, number: str) -> httpx.Response:
        return await self.call(
            "POST",
            f"/inquiries/{inquiry_id}/submit",
            operator,
            json={"approval": {"method": "approval_number", "approval_number": number}},
        )

    async def get(self, user_id: str, inquiry_id: str) -> dict[str, Any]:
        response = await self.call("GET", f"/inquiries/{inquiry_id}", user_id)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def inquiries(self, user_id: str, **filters: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000, **filters}
        while True:
            response = await self.call("GET", "/inquiries", user_id, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            if not page["next_cursor"]:
                return items
            params["cursor"] = page["next_cursor"]

    async def release(self, confirmer: str, inquiry_id: str, check: str = "match") -> httpx.Response:
        return await self.call(
            "POST",
            f"/inquiries/{inquiry_id}/release",
            confirmer,
            json={"password": self.gateway.password(confirmer), "document_check": check},
        )

    async def read_response(self, user_id: str, inquiry_id: str) -> httpx.Response:
        return await self.call("GET", f"/inquiries/{inquiry_id}/response", user_id)
