"""The one error handler: every refusal becomes problem+json with a stable code (ER-1).

401/403 refusals are recorded in the ledger (LG-1: denied requests) unless the service already did.
Validation errors never echo the input back: it may hold a password or a person's name.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from app.audit.ledger import Actor, record
from app.authz.principal import Principal
from app.context import AppContext
from app.crypto.envelope import SealError
from app.errors import PROBLEM_MEDIA_TYPE, DomainError, MyNumberForbidden, OutOfScope, problem_body
from app.inquiry.subject import MY_NUMBER_ERROR, typed_an_individual_number, unless_my_number

log = logging.getLogger("shokai.errors")

SEALED_UNREADABLE = "SEALED_VALUE_UNREADABLE"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "NOT_AUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def _problem(request: Request, status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        problem_body(status=status, code=code, title=title, detail=detail, request_id=request_id, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def route_template(scope: Scope, *, unmatched: str = "(no route)") -> str:
    """The route's template (``/inquiries/{inquiry_id}``) for logs and metrics: what was typed in a path
    stays out."""
    return str(getattr(scope.get("route"), "path", None) or unmatched)


def _route_of(request: Request) -> str:
    return route_template(request.scope)


async def _record_request_event(
    request: Request, *, action: str, outcome: str, status: int, code: str
) -> None:
    """One ledger event about this request, in its own transaction: who, from where, which endpoint."""
    ctx: AppContext = request.app.state.ctx
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        actor = principal.actor()
    else:
        actor = Actor(
            id=None,
            terminal_id=unless_my_number(request.headers.get("x-terminal-id", "")[:40] or None),
            address=request.client.host if request.client else None,
            request_id=getattr(request.state, "request_id", None),
        )
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    try:
        async with ctx.db.session() as session:
            record(
                session,
                actor=actor,
                action=action,
                object_type="endpoint",
                # The path, never the query string: queries may carry search terms about a person. A path
                # with an Individual Number typed into it is kept as its route's template.
                object_id=unless_my_number(request.url.path[:80], instead=template or "(withheld)"),
                outcome=outcome,
                details={"status": status, "code": code, "method": request.method},
            )
            await session.commit()
    except Exception:  # the answer stands even if its record cannot be written; operators are alerted by logs
        log.exception("could not record %s", action, extra={"code": code})


async def record_denial(request: Request, status: int, code: str) -> None:
    """Write the LG-1 ``request.denied`` event for a 401/403 (the API's handler and the panel's pages)."""
    await _record_request_event(request, action="request.denied", outcome="denied", status=status, code=code)
    request.app.state.ctx.metrics.denied_requests.labels(code).inc()


async def record_refusal(request: Request, exc: DomainError) -> None:
    """A 401/403 refusal — or a 404 hiding another branch's record — is recorded (LG-1) unless its service
    already did; every one is counted. So is an
    Individual Number refused in free text (PL-4): an attempt to collect one is for the auditor to see."""
    if (exc.status in (401, 403) or isinstance(exc, OutOfScope)) and not exc.audited:
        await record_denial(request, exc.status, exc.code)
    elif exc.status in (401, 403):
        request.app.state.ctx.metrics.denied_requests.labels(exc.code).inc()
    elif isinstance(exc, MyNumberForbidden) and not exc.audited:
        await _record_request_event(
            request, action="request.refused", outcome="denied", status=422, code=exc.code
        )


async def handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    await record_refusal(request, exc)
    response = _problem(request, exc.status, exc.code, exc.title, exc.detail, **exc.extra)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _typed_in_the_url(exc: RequestValidationError) -> bool:
    """A query or path value the route refused (``?limit=`` with twelve digits, say) that reads as an
    Individual Number: the caller is told what is wrong with it first, as for a body. URLs carry no
    secrets, so every refused value is scanned as typed."""
    return any(
        error.get("loc", ("",))[0] in ("query", "path") and typed_an_individual_number(error.get("input"))
        for error in exc.errors()
    )


def _named_location(error: Any) -> list[str | None]:
    """Where the error is, in the schema's own names. A key the schema does not know is what the caller
    typed — a customer's name, a number — and is not echoed back (nor into a log that keeps the body);
    every other part is a field the schema names, or an index."""
    loc = [unless_my_number(str(part), instead="(withheld)") for part in error.get("loc", ())]
    if error.get("type") == "extra_forbidden" and loc:
        loc[-1] = "(unknown field)"
    return loc


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": _named_location(error),
            "type": error.get("type"),
            "msg": error.get("msg"),
        }
        for error in exc.errors()
    ]
    typed_one = (
        any(error["type"] == MY_NUMBER_ERROR for error in errors)
        or (
            # A body that is not valid never reaches the inquiry service's whole-body scan; one that holds a
            # number (in a field the schema does not know, say) is told so all the same. Only a parsed body
            # is read: raw text could be a password's.
            isinstance(exc.body, dict | list) and typed_an_individual_number(exc.body)
        )
        or _typed_in_the_url(exc)
    )
    if typed_one:
        # PL-4 before any other fault of the body: what the caller must hear is that the number may not be
        # entered at all. The refusal is recorded (its code, never the text).
        refusal = MyNumberForbidden("Remove the Individual Number: the gateway may not collect it")
        await record_refusal(request, refusal)
        return _problem(request, refusal.status, refusal.code, refusal.title, refusal.detail, errors=errors)
    return _problem(request, 422, "VALIDATION_ERROR", "The request is not valid", "See errors", errors=errors)


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    if exc.status_code in (401, 403):
        await record_denial(request, exc.status_code, code)
    return _problem(request, exc.status_code, code, str(exc.detail), str(exc.detail))


async def handle_sealed_value_unreadable(request: Request, exc: Exception) -> JSONResponse:
    """A sealed value (a subject, a response, a staff note) failed its AES-GCM check: the row was altered,
    or copied from another row (the associated data binds each to its own), or its key is gone. Nothing
    is shown; it is recorded in the ledger as a possible tampering and counted for the alert (EN-1)."""
    assert isinstance(exc, SealError)
    log.error("sealed value unreadable on %s %s", request.method, _route_of(request))
    await _record_request_event(
        request,
        action="system.sealed_value_unreadable",
        outcome="failure",
        status=500,
        code=SEALED_UNREADABLE,
    )
    request.app.state.ctx.metrics.sealed_values_unreadable.inc()
    return _problem(
        request,
        500,
        SEALED_UNREADABLE,
        "Stored data failed its integrity check",
        "The stored value cannot be opened and is not shown; the event is recorded for the security officer",
    )


def log_unexpected(exc: Exception, *, method: str, route: str) -> None:
    # Only the type goes to the log (and the frames, app/monitoring/logs.py): an exception message may
    # quote input, and a path may, too.
    log.error("unhandled %s on %s %s", type(exc).__name__, method, route, exc_info=exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log_unexpected(exc, method=request.method, route=_route_of(request))
    return _problem(request, 500, "INTERNAL_ERROR", "Internal error", "The request could not be completed")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(SealError, handle_sealed_value_unreadable)
    # Any other exception is answered by RequestContext (app/main.py) with handle_unexpected, inside the
    # middleware that adds the request id; registered here too, Starlette's outermost handler would log
    # a streamed response's failure a second time.
