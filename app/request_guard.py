"""Bodies too large to hold and text no database column can store are refused at the edge, for every
route (ER-1).

Without a bound on the body one request could make the gateway read gigabytes into memory before any
schema looks at it; the bound (``max_request_body_bytes``) is checked on ``Content-Length`` before
anything is read, and on the bytes received for a chunked body or one longer than it said.

PostgreSQL ``text`` cannot store U+0000, and neither backend's driver can encode a lone UTF-16
surrogate. Both are valid JSON (``\\u0000``, ``\\ud800``) and NUL is a valid URL escape (``%00``), so
without this guard such a value passes every schema and fails at the first statement that carries it:
500, or 503 ``LEDGER_UNAVAILABLE`` when it fails inside the ledger's commit hook — which tells the
client to retry a request that can never succeed. SQLite would store NUL, and the two backends would
disagree. Refusing the request before any route runs answers 422 ``VALIDATION_ERROR`` on both backends
and writes nothing, whichever field, path, query parameter, header or form carries it.

A JSON object naming one key twice, and a header that says who is calling sent twice, are refused too:
parsers and proxies disagree about which copy counts.

Plain ASGI, like ``RequestContext``: the body is read once, checked, and replayed to the app unchanged.
Every refusal writes nothing and are answered as problem+json with the request id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_MEDIA_TYPE, DomainError, PayloadTooLarge, ValidationFailed, problem_body
from app.strict_json import DuplicateKeys, loads_distinct

# A JSON escape that may decode to NUL or to a surrogate; the body is then decoded to see whether it does
# (an escaped backslash before it, or a surrogate that is half of a valid pair, is harmless).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_FORM = "application/x-www-form-urlencoded"


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def _json_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return _unstorable(value)
    if isinstance(value, dict):
        return any(_unstorable(key) or _json_unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_json_unstorable(item) for item in value)
    return False


def _body_unstorable(body: bytes, content_type: str) -> bool:
    if b"\x00" in body:
        return True
    if content_type == _FORM:
        # In a urlencoded form every "%00" decodes to NUL (a literal "%" is sent as "%25").
        return b"%00" in body
    if _SUSPECT_ESCAPE.search(body) is None:
        return False
    try:
        decoded = json.loads(body)
    except ValueError:
        return False  # not JSON: the route's own parsing refuses it
    return _json_unstorable(decoded)


# No body the gateway takes is nested more than a few levels (an inquiry's consent document, a policy's
# table). Python's recursion limit is about 1,000 frames: a body of a few hundred brackets parses, but
# every function that walks it — the Individual Number scan, this guard's own — would fail (a 500).
MAX_JSON_DEPTH = 32


def too_deeply_nested(body: bytes) -> bool:
    """Whether a JSON body opens more than ``MAX_JSON_DEPTH`` arrays or objects inside one another.

    Parsed by the C decoder (linear; it gives up with RecursionError near the limit itself) and walked
    with an explicit stack, so the check cannot itself recurse. Only a body with more brackets than the
    bound could exceed it, so nearly every body is passed over on two counts of its bytes."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    try:
        decoded = json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False  # not JSON: the route's own parsing refuses it
    pending: list[tuple[Any, int]] = [(decoded, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return True
            pending.extend(
                (item, depth + 1) for item in (value.values() if isinstance(value, dict) else value)
            )
    return False


def has_duplicate_key(body: bytes) -> bool:
    """Whether a JSON object in the body names one key twice.

    JSON leaves the meaning open (RFC 8259 §4): Python keeps the last, other parsers the first, so a
    ``purpose`` sent twice could be logged by a proxy as one purpose and checked here as another. A body
    with fewer than four quotes cannot name two keys and is passed over unparsed."""
    if body.count(b'"') < 4:
        return False
    try:
        loads_distinct(body)
    except DuplicateKeys:
        return True
    except (ValueError, RecursionError):
        return False  # not JSON (too deep a body is refused before): the route's own parsing refuses it
    return False


# Headers that say who is calling and what a request is: sent twice, servers and proxies disagree about
# which one counts (the first, the last, both joined), so the gateway refuses to guess. Not the request id:
# a correlation header that some proxies append to.
SINGLE_HEADERS = frozenset(
    {
        b"authorization",
        b"x-terminal-id",
        b"x-terminal-key",
        b"idempotency-key",
        b"content-type",
    }
)


def repeated_header(scope: Scope) -> str | None:
    """The first of ``SINGLE_HEADERS`` the request carries more than once, or None."""
    seen: set[bytes] = set()
    for name, _ in scope.get("headers", ()):
        if name in SINGLE_HEADERS:
            if name in seen:
                return name.decode("latin-1")
            seen.add(name)
    return None


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def unstorable_part(scope: Scope, body: bytes) -> str | None:
    """Where the request carries text that cannot be stored (``path``, ``query``, ``header``, ``body``)."""
    # Some servers (and httpx's ASGI transport) leave the query string on raw_path.
    raw_path = (scope.get("raw_path") or b"").split(b"?", 1)[0]
    if "\x00" in scope.get("path", "") or b"%00" in raw_path:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return "query"
    for name, value in scope.get("headers", ()):
        if b"\x00" in name or b"\x00" in value:
            return "header"
    if body and _body_unstorable(body, _content_type(scope)):
        return "body"
    return None


class RequestGuard:
    """Refuses, before any route runs, a body larger than ``max_body_bytes`` (413 ``PAYLOAD_TOO_LARGE``)
    and text no column can store (422 ``VALIDATION_ERROR``)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self._app = app
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self._declared_length(scope) > self._max_body_bytes:
            # Refused on the header alone: nothing of the body is read.
            await self._refuse(scope, send, self._too_large())
            return
        if (header := repeated_header(scope)) is not None:
            error = ValidationFailed(f"The {header} header may be sent once")
            await self._refuse(
                scope,
                send,
                error,
                errors=[{"loc": ["header", header], "type": "repeated_header", "msg": error.detail}],
            )
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self._max_body_bytes:
                # A chunked body, or one longer than its Content-Length said: stop reading at the bound.
                await self._refuse(scope, send, self._too_large())
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if body and _content_type(scope) != _FORM and too_deeply_nested(body):
            error = ValidationFailed(f"The request body may nest at most {MAX_JSON_DEPTH} levels")
            await self._refuse(
                scope,
                send,
                error,
                errors=[{"loc": ["body"], "type": "too_deeply_nested", "msg": error.detail}],
            )
            return
        if body and _content_type(scope) != _FORM and has_duplicate_key(body):
            error = ValidationFailed("A JSON object in the request names one key twice")
            await self._refuse(
                scope,
                send,
                error,
                errors=[{"loc": ["body"], "type": "duplicate_key", "msg": error.detail}],
            )
            return
        part = unstorable_part(scope, body)
        if part is not None:
            error = ValidationFailed(
                "The request contains a character that cannot be stored (NUL or a lone surrogate)"
            )
            # The same shape as the handler's validation errors; the value itself is never echoed.
            await self._refuse(
                scope,
                send,
                error,
                errors=[{"loc": [part], "type": "unstorable_character", "msg": "NUL or a lone surrogate"}],
            )
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._app(scope, replay, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0  # the server refuses a malformed length before the app is called
        return 0

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body may be at most {self._max_body_bytes} bytes")

    @staticmethod
    async def _refuse(scope: Scope, send: Send, error: DomainError, **extra: Any) -> None:
        content = problem_body(
            status=error.status,
            code=error.code,
            title=error.title,
            detail=error.detail,
            request_id=scope.get("state", {}).get("request_id"),
            **extra,
        )
        payload = json.dumps(content).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
