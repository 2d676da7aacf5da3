"""A body larger than ``max_request_body_bytes`` is refused before any route runs (ER-1): 413
``PAYLOAD_TOO_LARGE`` as problem+json, nothing written, nothing sent to the center, and a chunked body is
not read past the bound."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import ledger_events, terminal, terminal_headers
from tests.inquiry.support import as_user, center_record, draft_body, password_of, person
from tests.test_errors import assert_problem


async def _a1_body_padded_to(ctx: AppContext, demo: DemoCredentials, size: int) -> bytes:
    body = draft_body(await person(ctx))
    body["approval"] = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    body["consent_document"]["reference"] = ""
    raw = json.dumps(body, ensure_ascii=False)
    body["consent_document"]["reference"] = "R" * (size - len(raw.encode()))
    encoded = json.dumps(body, ensure_ascii=False).encode()
    assert len(encoded) == size
    return encoded


async def test_an_inquiry_body_over_the_bound_is_refused_and_nothing_is_written_or_sent(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    events_before = len(await ledger_events(ctx))
    center_before = len(await center_record(ctx))
    limit = ctx.settings.max_request_body_bytes
    assert limit == 1024 * 1024  # the default a fresh installation runs with

    response = await client.post(
        "/inquiries",
        content=await _a1_body_padded_to(ctx, demo, limit + 1),
        headers={**operator, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert str(limit) in str(body["detail"])

    listed = await client.get("/inquiries", headers=operator)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert len(await ledger_events(ctx)) == events_before
    assert len(await center_record(ctx)) == center_before


async def test_a_body_within_the_bound_reaches_the_route(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Exactly at the bound the guard lets the body through: the route's own schema refuses the
    over-long consent reference (422), not the size guard."""
    operator = await as_user(client, demo, "op001")
    response = await client.post(
        "/inquiries",
        content=await _a1_body_padded_to(ctx, demo, ctx.settings.max_request_body_bytes),
        headers={**operator, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "VALIDATION_ERROR")
    assert await center_record(ctx) == []


async def test_a_chunked_body_is_not_read_past_the_bound(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Without a Content-Length the guard counts what arrives and stops at the bound: a client
    streaming 16 MiB has only a little over 1 MiB of it read, on a route that needs no login either."""
    chunk = b" " * (64 * 1024)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(256):
            sent += 1
            yield chunk

    response = await client.post(
        "/auth/login",
        content=endless(),
        headers={**terminal_headers(terminal(demo, "001")), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert sent <= ctx.settings.max_request_body_bytes // len(chunk) + 2


async def test_a_panel_form_over_the_bound_is_refused_the_same_way(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    events_before = len(await ledger_events(ctx))
    form = b"user_id=op001&password=" + b"x" * ctx.settings.max_request_body_bytes
    response = await client.post(
        "http://testserver/panel/login",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert len(await ledger_events(ctx)) == events_before


def _nested(depth: int) -> bytes:
    return b'{"user_id": "op001", "password": "x", "x": ' + b"[" * depth + b"]" * depth + b"}"


async def test_a_body_nested_deeper_than_any_real_one_is_refused_before_any_route_runs(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A few hundred brackets parse, but every function that walks the body would run out of stack (a
    500, without logging in). Refused at the edge as 422: nothing written, nothing sent."""
    operator = await as_user(client, demo, "op001")
    events_before = len(await ledger_events(ctx))
    json_headers = {"Content-Type": "application/json"}
    for depth in (33, 600, 5000):
        for path, headers in (
            ("/auth/login", {**json_headers, **terminal_headers(terminal(demo, "001"))}),
            ("/auth/token", json_headers),
            ("/inquiries", {**json_headers, **operator}),
        ):
            body = assert_problem(
                await client.post(path, content=_nested(depth), headers=headers), 422, "VALIDATION_ERROR"
            )
            assert body["errors"] == [
                {
                    "loc": ["body"],
                    "type": "too_deeply_nested",
                    "msg": "The request body may nest at most 32 levels",
                }
            ], (path, depth)
    # Brackets inside strings are text, not nesting; a body at the bound reaches the route as before.
    assert_problem(
        await client.post(
            "/auth/login",
            json={"user_id": "[" * 40, "password": "{" * 100},
            headers=terminal_headers(terminal(demo, "001")),
        ),
        401,
        "INVALID_CREDENTIALS",
    )
    at_the_bound = await client.post(
        "/auth/login",
        content=_nested(31),
        headers={**json_headers, **terminal_headers(terminal(demo, "001"))},
    )
    assert at_the_bound.json()["code"] == "VALIDATION_ERROR"
    assert at_the_bound.json()["errors"][0]["type"] != "too_deeply_nested"
    assert len(await ledger_events(ctx)) == events_before + 1  # the one failed login, nothing else
    assert await center_record(ctx) == []


async def test_a_key_named_twice_in_a_json_object_is_refused_before_any_route_runs(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Python keeps the last of two equal keys, other parsers the first: a purpose sent twice could be
    logged upstream as one purpose and checked here as another. Refused: nothing written, nothing sent."""
    operator = await as_user(client, demo, "op001")
    events_before = len(await ledger_events(ctx))
    twice = (
        b'{"purpose": "credit_review", "customer_status": "applicant", "purpose": "relocation_check",'
        b' "subject": {"name_kana": "\\u30b7\\u30b1\\u30f3", "birth_date": "1980-01-01"}}'
    )
    nested_twice = (
        b'{"purpose": "credit_review", "subject": {"birth_date": "1980-01-01", "birth_date": "1990-01-01"}}'
    )
    spaced = b'{"purpose" :"credit_review", "purpose" :"relocation_check"}'
    for body in (twice, nested_twice, spaced, b'{"a":1,"a":2}'):
        refused = assert_problem(
            await client.post(
                "/inquiries", content=body, headers={**operator, "Content-Type": "application/json"}
            ),
            422,
            "VALIDATION_ERROR",
        )
        assert refused["errors"] == [
            {
                "loc": ["body"],
                "type": "duplicate_key",
                "msg": "A JSON object in the request names one key twice",
            }
        ]
    # The same key in two different objects is no twin: the route's own checks answer.
    answer = await client.post(
        "/inquiries",
        content=b'{"a": {"x": 1}, "b": {"x": 2}}',
        headers={**operator, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["type"] != "duplicate_key"
    assert len(await ledger_events(ctx)) == events_before
    assert await center_record(ctx) == []


async def test_a_header_that_says_who_is_calling_sent_twice_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """With two Authorization or X-Terminal-Id headers, the server took the first and a proxy might take
    the last: the gateway does not guess whose request it is."""
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    events_before = len(await ledger_events(ctx))
    for name, values in (
        ("Authorization", (operator["Authorization"], confirmer["Authorization"])),
        ("X-Terminal-Id", ("T-001-01", "T-002-01")),
        ("Idempotency-Key", ("a", "b")),
    ):
        headers = [(name, value) for value in values]
        if name != "Authorization":
            headers.append(("Authorization", operator["Authorization"]))
        refused = assert_problem(await client.get("/me", headers=headers), 422, "VALIDATION_ERROR")
        assert refused["errors"][0]["loc"] == ["header", name.lower()], refused
        assert refused["request_id"]
    assert (await client.get("/me", headers=operator)).status_code == 200
    # The request id is a correlation header some proxies append to: sent twice, it is no refusal.
    correlated = [
        *operator.items(),
        ("X-Request-Id", "a1"),
        ("X-Request-Id", "b2"),
    ]
    assert (await client.get("/me", headers=correlated)).status_code == 200
    assert len(await ledger_events(ctx)) == events_before
