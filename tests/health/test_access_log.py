"""No personal data in logs (design.md house rules, LG-2): the production start path never writes a
query string to a log. `GET /audit/subject-access` takes the person as query parameters (api.md), so an
access log with URLs would carry a subject's kana name and birth date.

The server runs exactly as the image starts it (`shokai gateway`: `app.serving.server_config`), with
real uvicorn on a socket, and every log line from uvicorn and the app is collected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.parse
from pathlib import Path

import httpx
import uvicorn

from app.context import AppContext
from app.demo import DemoCredentials
from app.main import create_app
from app.monitoring.logs import JsonFormatter
from app.serving import server_config
from tests.helpers import user

# Where every record ends up: the root and the loggers that do not pass records on to it.
LOGGERS = ("", "uvicorn", "uvicorn.access", "shokai")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.json_lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The line as production writes it (request id included) and everything else the record holds.
        self.json_lines.append(JsonFormatter().format(record))
        self.lines.extend((self.json_lines[-1], repr(record.__dict__)))


async def test_a_subject_access_query_leaves_no_name_or_birth_date_in_any_log(
    ctx: AppContext, demo: DemoCredentials
) -> None:
    name_kana, birth_date = "ヤマグチ サユリ", "1979-03-14"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(create_app(context=ctx, background_tasks=False), port=port))
    collect = _Collect()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(collect)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1") as http:
            login = await http.post(
                "/auth/login", json={"user_id": "auditor", "password": user(demo, "auditor")["password"]}
            )
            assert login.status_code == 200, login.text
            answer = await http.get(
                "/audit/subject-access",
                params={"name_kana": name_kana, "birth_date": birth_date},
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            )
            assert answer.status_code == 200, answer.text
    finally:
        server.should_exit = True
        await task
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(collect)

    text = "\n".join(collect.lines)
    # The request is logged (operations still see it), by its route template only, with its request id.
    logged = [json.loads(line) for line in collect.json_lines]
    [access] = [line for line in logged if line["message"] == "GET /audit/subject-access 200"]
    assert access["request_id"] == answer.headers["X-Request-Id"] and access["logger"] == "shokai.access"
    for value in (name_kana, birth_date, urllib.parse.quote_plus(name_kana), urllib.parse.quote(name_kana)):
        assert value not in text
    assert "name_kana=" not in text and "birth_date=" not in text


def test_the_image_starts_the_gateway_through_the_project_command() -> None:
    """A plain `uvicorn` command line would bring its access log (with query strings) back."""
    dockerfile = (Path(__file__).parents[2] / "Dockerfile").read_text(encoding="utf-8")
    [command] = [line for line in dockerfile.splitlines() if line.startswith("CMD")]
    assert "shokai gateway" in command and "uvicorn" not in command
