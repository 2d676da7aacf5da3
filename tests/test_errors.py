"""Bad input and refusals (ER-1): problem+json with a stable code, a request id, never a 500, no echo."""

from __future__ import annotations

import json
import logging
import re

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.subject import contains_my_number
from app.monitoring.logs import JsonFormatter
from tests.governance.support import privileged_headers
from tests.helpers import (
    MY_NUMBER,
    MY_NUMBER_GROUPED,
    auth_headers,
    ledger_events,
    terminal,
    terminal_headers,
    user,
)

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_FIELDS <= body.keys()
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no-such-thing"), 404, "NOT_FOUND")
    assert_problem(await client.get("/auth/login"), 405, "METHOD_NOT_ALLOWED")


async def test_every_response_carries_a_request_id_and_a_good_one_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) >= 8
    kept = await client.get("/healthz", headers={"X-Request-Id": "batch-20261124-0001"})
    assert kept.headers["x-request-id"] == "batch-20261124-0001"
    replaced = await client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert replaced.headers["x-request-id"] != "bad id with spaces"


async def test_a_request_id_that_reads_as_an_individual_number_is_replaced_before_it_is_recorded(
    client: httpx.AsyncClient, ctx: AppContext, demo: DemoCredentials
) -> None:
    """The request ID is in every ledger event and log line of the request (PL-4)."""
    for sent in (MY_NUMBER, MY_NUMBER_GROUPED.replace("-", "_")):
        response = await client.post(
            "/auth/login",
            json={"user_id": "op001", "password": user(demo, "op001")["password"]},
            headers={**terminal_headers(terminal(demo, "001")), "X-Request-Id": sent},
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] != sent
    async with ctx.db.read_session() as session:
        request_ids = (await session.scalars(select(AuditEvent.request_id))).all()
    assert request_ids and not [r for r in request_ids if r and contains_my_number(r)]
    # Twelve digits without a valid check digit are kept, as any well-formed ID is.
    wrong = MY_NUMBER[:11] + str((int(MY_NUMBER[11]) + 1) % 10)
    assert (await client.get("/healthz", headers={"X-Request-Id": wrong})).headers["x-request-id"] == wrong


async def test_a_refused_query_or_path_value_reading_as_an_individual_number_is_told_so(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A number pasted into the wrong box of a URL is refused as a number (PL-4), as in a body: the caller
    hears what must not be typed at all, and the ledger keeps the code only."""
    operator = await auth_headers(client, demo, "op001")
    confirmer = await auth_headers(client, demo, "cf001")
    auditor = await auth_headers(client, demo, "auditor")
    for response in (
        await client.get("/inquiries", params={"limit": MY_NUMBER}, headers=operator),
        await client.get("/audit/subject-access", params={"subject_pseudonym": MY_NUMBER}, headers=auditor),
        await client.post(
            f"/daily-lists/none/lines/{MY_NUMBER}/check", json={"result": "matched"}, headers=confirmer
        ),
    ):
        assert_problem(response, 422, "MY_NUMBER_FORBIDDEN")
        assert MY_NUMBER not in response.text
    # Any other refused value is still the plain validation error it was.
    assert_problem(
        await client.get("/inquiries", params={"limit": "100000"}, headers=operator), 422, "VALIDATION_ERROR"
    )
    wrong = MY_NUMBER[:11] + str((int(MY_NUMBER[11]) + 1) % 10)
    assert_problem(
        await client.get("/inquiries", params={"limit": wrong}, headers=operator), 422, "VALIDATION_ERROR"
    )
    refusals = [json.loads(e.details) for e in await ledger_events(ctx, action="request.refused")]
    assert [r["code"] for r in refusals] == ["MY_NUMBER_FORBIDDEN"] * 3
    assert not [e for e in await ledger_events(ctx) if MY_NUMBER in (e.details or "")]


async def test_an_unexpected_failure_is_answered_with_its_request_id_and_logged_under_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A fault nobody foresaw is still problem+json carrying the request id the caller can quote to
    support, logged under that id by type and frames only, and the connection carries on (it used to
    reach the server as an exception, which dropped the client's keep-alive connection)."""

    async def fails() -> None:
        raise RuntimeError("ヤマダ タロウ 1990-04-12")  # a message that quotes input

    app.add_api_route("/api/v1/test-only/fails", fails)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(JsonFormatter().format(record))  # type: ignore[method-assign]
    logging.getLogger("shokai").addHandler(handler)
    try:
        response = await client.get("/test-only/fails", headers={"X-Request-Id": "batch-20261204-0001"})
    finally:
        logging.getLogger("shokai").removeHandler(handler)
    body = assert_problem(response, 500, "INTERNAL_ERROR")
    assert body["request_id"] == response.headers["x-request-id"] == "batch-20261204-0001"
    assert response.headers["cache-control"] == "no-store"
    assert "ヤマダ" not in response.text
    logged = [json.loads(line) for line in lines if "unhandled" in line]
    assert [(e["request_id"], e["exception"]) for e in logged] == [("batch-20261204-0001", "RuntimeError")]
    assert any("fails" in frame for frame in logged[0]["stack"])
    assert "ヤマダ" not in "".join(lines)
    assert (await client.get("/healthz")).status_code == 200


async def test_validation_errors_never_echo_the_input(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    secret = "サトウ ハナコ 1990-04-12 Secret-Password-123"
    response = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": secret, "unexpected": secret},
        headers=terminal_headers(terminal(demo, "001")),
    )
    body = assert_problem(response, 422, "VALIDATION_ERROR")
    assert secret not in response.text
    assert body["errors"], body
    # Nor a key the schema does not know, which is typed too: here a customer's name (found by an API
    # review: "extra_ミヤザキ　カオリ" came back as the field's name).
    named = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": "x", "ミヤザキ　カオリ": 1},
        headers=terminal_headers(terminal(demo, "001")),
    )
    errors = assert_problem(named, 422, "VALIDATION_ERROR")["errors"]
    assert "ミヤザキ" not in named.text
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", "(unknown field)"], "extra_forbidden")]


async def test_malformed_json_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 422, "VALIDATION_ERROR")


async def test_missing_bearer_is_refused_and_recorded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx
) -> None:  # type: ignore[no-untyped-def]
    assert_problem(await client.get("/me"), 401, "NOT_AUTHENTICATED")
    assert_problem(await client.get("/me", headers={"Authorization": "Basic abc"}), 401, "NOT_AUTHENTICATED")
    denied = await ledger_events(ctx, action="request.denied")
    assert len(denied) == 2
    assert denied[0].object_id == "/api/v1/me"


async def test_forbidden_action_is_problem_json(client: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = await auth_headers(client, demo, "op001")
    assert_problem(await client.get("/audit/verify", headers=headers), 403, "FORBIDDEN")
    assert_problem(
        await client.post("/terminals", json={"id": "T001-77", "branch_code": "001"}, headers=headers),
        403,
        "FORBIDDEN",
    )


async def test_conflicts_and_bad_references_leave_nothing_behind(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    assert_problem(
        await client.post("/terminals", json={"id": "T001-01", "branch_code": "001"}, headers=admin),
        409,
        "CONFLICT",
    )
    assert_problem(
        await client.post("/terminals", json={"id": "T777-01", "branch_code": "777"}, headers=admin),
        422,
        "VALIDATION_ERROR",
    )
    listed = await client.get("/terminals", headers=admin)
    assert "T777-01" not in {t["id"] for t in listed.json()["items"]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.dictionaries(
            st.text(max_size=12), st.one_of(st.none(), st.integers(), st.text(max_size=40), st.booleans())
        ),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=30),
        st.integers(),
    )
)
async def test_random_login_bodies_never_give_500(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post(
        "/auth/login", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (401, 403, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_nul_is_refused_before_any_route_runs(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx
) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL cannot store U+0000: every router, the panel's forms included, answers 422 and writes
    nothing (no failed-login count, no denied-request event), on SQLite exactly as on PostgreSQL."""
    events_before = len(await ledger_events(ctx))
    login = {"user_id": "op001\x00", "password": "x"}
    assert_problem(
        await client.post("/auth/login", json=login, headers=terminal_headers(terminal(demo, "001"))),
        422,
        "VALIDATION_ERROR",
    )
    assert_problem(await client.get("/audit/events?action=%00"), 422, "VALIDATION_ERROR")
    assert_problem(await client.get("/lists/%00"), 422, "VALIDATION_ERROR")
    assert_problem(await client.post("/hq-requests", json={"purpose": "\x00"}), 422, "VALIDATION_ERROR")
    assert_problem(await client.get("/me", headers={"X-Terminal-Id": "T\x00"}), 422, "VALIDATION_ERROR")
    panel_form = await client.post(
        "http://testserver/panel/login",
        content=b"user_id=op001%00&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = assert_problem(panel_form, 422, "VALIDATION_ERROR")
    assert body["errors"] == [
        {"loc": ["body"], "type": "unstorable_character", "msg": "NUL or a lone surrogate"}
    ]
    assert len(await ledger_events(ctx)) == events_before


def _unbounded_integers(
    schema: object, where: str, components: dict[str, object], seen: frozenset[str]
) -> list[str]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded_integers(components[name], where, components, seen | {name})
    found = [where] if schema.get("type") == "integer" and "maximum" not in schema else []
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found += _unbounded_integers(part, where, components, seen)
    for name, part in schema.get("properties", {}).items():
        found += _unbounded_integers(part, f"{where}.{name}", components, seen)
    found += _unbounded_integers(schema.get("items"), f"{where}[]", components, seen)
    return found


def test_every_integer_a_client_sends_has_an_upper_bound(app: FastAPI) -> None:
    """An integer past what a BIGINT holds fails in the database driver, not as 422: after_seq=2**63 was a
    200 stream cut off part-way, 2**64 a 500. Every integer in a path, query or body is bounded."""
    spec = app.openapi()
    components = spec.get("components", {}).get("schemas", {})
    unbounded: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} {parameter['in']}:{parameter['name']}"
                unbounded += _unbounded_integers(parameter.get("schema"), where, components, frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                where = f"{method.upper()} {path} body"
                unbounded += _unbounded_integers(content.get("schema"), where, components, frozenset())
    assert unbounded == []


async def test_a_panel_cookie_that_escapes_a_control_character_is_no_cookie(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Cookie syntax unquotes octal escapes: ``"T\\000X"`` arrives as a NUL, which PostgreSQL cannot take
    in a query (was a 500 at the panel's login). The panel set no such cookie; it is read as absent."""
    bad_terminal = 'shokai_terminal="T\\000X:key"'
    page = await client.get("http://testserver/panel/login", headers={"Cookie": bad_terminal})
    assert page.status_code == 200
    nonce = page.cookies["shokai_login_nonce"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    teller = user(demo, "op001")
    posted = await client.post(
        "http://testserver/panel/login",
        data={"user_id": "op001", "password": teller["password"], "csrf_token": token.group(1)},
        headers={"Cookie": f"{bad_terminal}; shokai_login_nonce={nonce}"},
    )
    # A teller without a terminal is refused as one, on the login page; nothing else happens.
    assert posted.status_code == 403, posted.text
    assert "<code>TERMINAL_NOT_REGISTERED</code>" in posted.text
    denied = await ledger_events(ctx, action="auth.login_denied")
    assert [json.loads(e.details)["code"] for e in denied] == ["TERMINAL_NOT_REGISTERED"]
    # With a live session, the same cookie is no terminal binding: the session, bound to its terminal,
    # is ended and the panel asks for a new login.
    session = (await auth_headers(client, demo, "op001"))["Authorization"].removeprefix("Bearer ")
    dashboard = await client.get(
        "http://testserver/panel/", headers={"Cookie": f"shokai_panel={session}; {bad_terminal}"}
    )
    assert dashboard.status_code == 303 and "/panel/login" in dashboard.headers["location"]
