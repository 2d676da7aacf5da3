"""``create_app(settings)``: routers, middleware, error handlers and the lifespan of one instance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.ledger import CONTEXT_KEY as LEDGER_CONTEXT_KEY
from app.audit.ledger import SYSTEM_ACTOR, LedgerContext, checkpoint_now, install_ledger_hooks, record
from app.audit.router import admin_router as audit_admin_router
from app.audit.router import router as audit_router
from app.authz.passwords import PasswordHashing
from app.authz.router import directory_router
from app.authz.router import router as auth_router
from app.center.http_adapter import CenterLinkSettings, HttpCenterLink, check_transport_security
from app.center.interface import CenterLink
from app.center.simulator import create_simulator_app, simulator_transport
from app.center.simulator.population import Population
from app.clock import Clock, SystemClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring, open_keyring
from app.db import Database
from app.escalation.router import router as escalation_router
from app.governance import sweep as governance_sweep
from app.governance.router import emergency_router as governance_emergency_router
from app.governance.router import router as governance_router
from app.health.router import router as health_router
from app.hq.router import reconciliation_router as hq_reconciliation_router
from app.hq.router import router as hq_router
from app.inquiry.outbox import OutboxSender, check_claim_lease
from app.inquiry.policy import load_policy
from app.inquiry.router import register_router
from app.inquiry.router import router as inquiry_router
from app.inquiry.subject import contains_my_number
from app.inquiry.versions import register_policy_version
from app.lists import scheduler as list_schedule
from app.lists.calendar import BusinessCalendar, Closure
from app.lists.router import router as lists_router
from app.metrics import Metrics
from app.monitoring import scheduler as monitoring_schedule
from app.monitoring.center_link import CenterLinkWatch
from app.monitoring.logs import REQUEST_ID, configure_logging
from app.panel.router import install_panel
from app.problems import handle_unexpected, install_error_handlers, log_unexpected, route_template
from app.reconciliation import scheduler as reconciliation_schedule
from app.reconciliation.router import router as center_reconciliation_router
from app.request_guard import RequestGuard
from app.retention import service as retention_service
from app.retention.router import router as retention_router

API_PREFIX = "/api/v1"
access_log = logging.getLogger("shokai.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContext:
    """Request id, metrics and safe default headers for every response.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs each
    request in an extra task with memory streams, a cost every call would pay.
    """

    def __init__(self, app: ASGIApp, *, ctx: AppContext) -> None:
        self._app = app
        self._ctx = ctx
        header = ctx.settings.request_id_header
        self._header = header.lower().encode("latin-1")
        self._header_name = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(self._header_name, "")
        # A caller's own request ID is kept for correlation, unless it reads as an Individual Number: the
        # request ID is in every ledger event and log line of the request, and the ledger can never give
        # a value back up (PL-4). A random hex ID so read (about 1 in 1,000) is replaced like a bad one.
        well_formed = _REQUEST_ID.match(incoming) is not None
        request_id = incoming if well_formed and not contains_my_number(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = MutableHeaders(scope=message)
                headers[self._header_name] = request_id
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        try:
            try:
                await self._app(scope, receive, send_with_headers)
            except Exception as exc:
                # Answered here, the one place for it (app/problems.py registers no handler for it):
                # Starlette's outermost middleware sends its response past this one (no request id, no
                # safe headers), logs after the request id is reset and re-raises to the server, which
                # then drops the client's keep-alive connection.
                if response_started:
                    # A streamed body failed part-way. Only the server aborting the transfer tells the
                    # client that what it received is incomplete, so the error goes on to it.
                    log_unexpected(exc, method=scope["method"], route=route_template(scope))
                    raise
                answer = await handle_unexpected(Request(scope, receive), exc)
                await answer(scope, receive, send_with_headers)
        finally:
            template = route_template(scope, unmatched="unmatched")
            # The access log (uvicorn's is off, app/serving.py): the route template, never the URL, whose
            # query string can name a person (GET /audit/subject-access).
            access_log.info(
                "%s %s %s", scope["method"], template, status, extra={"route": template, "status": status}
            )
            REQUEST_ID.reset(request_id_token)
            metrics = self._ctx.metrics
            metrics.http_requests.labels(scope["method"], template, str(status)).inc()
            metrics.http_latency.labels(scope["method"], template).observe(time.perf_counter() - started)


log = logging.getLogger("shokai")


def build_center_link(
    settings: Settings, clock: Clock, *, population: Population | None = None
) -> tuple[CenterLink, FastAPI | None]:
    """The real center over HTTP (mutual TLS when configured), or the bundled simulator in-process."""
    link_settings = CenterLinkSettings(
        base_url=settings.center_url or "http://center-simulator",
        member_code=settings.center_member_code,
        connect_timeout_seconds=settings.center_connect_timeout_seconds,
        read_timeout_seconds=settings.center_read_timeout_seconds,
        write_timeout_seconds=settings.center_write_timeout_seconds,
        max_attempts=settings.center_max_attempts,
        breaker_failure_threshold=settings.center_breaker_threshold,
        breaker_cool_down_seconds=settings.center_breaker_cooldown_seconds,
        tls_client_cert=settings.center_tls_client_cert,
        tls_client_key=settings.center_tls_client_key,
        tls_ca_bundle=settings.center_tls_ca_bundle,
    )
    check_claim_lease(settings.outbox_claim_lease_seconds, link_settings.slowest_call_seconds)
    if settings.center_url:
        check_transport_security(link_settings, mutual_tls_required=settings.center_mutual_tls_required)
        return HttpCenterLink(link_settings, clock=clock), None
    simulator = create_simulator_app(clock=clock, population=population)
    client = httpx.AsyncClient(transport=simulator_transport(simulator), base_url=link_settings.base_url)
    return HttpCenterLink(link_settings, clock=clock, client=client), simulator


def build_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keyring: Keyring | None = None,
    create_keys: bool = False,
    center: CenterLink | None = None,
    population: Population | None = None,
) -> AppContext:
    clock = clock or SystemClock()
    keyring = keyring or open_keyring(
        key_file=settings.resolved_key_file(),
        env_keys=settings.keys,
        clock=clock,
        create=create_keys,
        check_every=timedelta(seconds=settings.key_file_check_seconds),
    )
    ledger = LedgerContext(
        keyring=keyring,
        clock=clock,
        checkpoint_every_events=settings.checkpoint_every_events,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )
    db = Database(
        settings.resolved_database_url(),
        session_info={LEDGER_CONTEXT_KEY: ledger},
        install_hooks=install_ledger_hooks,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )
    passwords = PasswordHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    policy = load_policy(settings.policy_file)
    simulator = None
    if center is None:
        center, simulator = build_center_link(settings, clock, population=population)
    return AppContext(
        settings=settings,
        clock=clock,
        keyring=keyring,
        db=db,
        passwords=passwords,
        metrics=Metrics(),
        policy=policy,
        calendar=BusinessCalendar(Closure(c.day, c.reason, c.branch_code) for c in policy.closures),
        center=center,
        center_simulator=simulator,
    )


async def _checkpoint_loop(ctx: AppContext) -> None:
    """The T-seconds half of the checkpoint rule: sign the head even when no further event arrives."""
    while True:
        await asyncio.sleep(ctx.settings.checkpoint_every_seconds)
        try:
            async with ctx.db.session() as session:
                await checkpoint_now(session)
        except Exception:
            log.exception("periodic checkpoint failed")


async def _record_system_event(ctx: AppContext, action: str) -> None:
    async with ctx.db.session() as session:
        record(session, actor=SYSTEM_ACTOR, action=action, object_type="system")
        await session.commit()


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the background jobs and wait until every one has ended.

    Asked again each second while one runs on: a library can lose a cancellation (``asyncio.wait_for`` on
    Python 3.11 does when the awaited thing completes at the same moment), and a job that lost it would
    otherwise go on into its next sleep and hold the shutdown for ever.
    """
    for task in tasks:
        task.cancel()
    pending = [task for task in tasks if not task.done()]
    while pending:
        await asyncio.wait(pending, timeout=1.0)
        pending = [task for task in pending if not task.done()]
        for task in pending:
            task.cancel()
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a background job had stopped with an error", exc_info=error)


def create_app(
    settings: Settings | None = None, *, context: AppContext | None = None, background_tasks: bool = True
) -> FastAPI:
    settings = settings or (context.settings if context else Settings())
    ctx = context or build_context(settings)
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await register_policy_version(ctx)
        # RT-2: a database restored from a backup older than a purge gets its destructions back before any
        # request can read what they destroyed. Before "started": a start it refuses records no start.
        await retention_service.reapply_journal(ctx)
        await _record_system_event(ctx, "system.started")
        tasks = []
        link_watch: tuple[CenterLinkWatch, Callable[[], None], asyncio.Task[None]] | None = None
        if background_tasks:
            sender = OutboxSender(ctx, idle_seconds=settings.outbox_idle_seconds)
            ctx.outbox_kick = sender.kick
            ctx.outbox_deliver_claimed = sender.deliver_claimed
            tasks = [
                asyncio.create_task(_checkpoint_loop(ctx)),
                asyncio.create_task(sender.run_forever()),
                asyncio.create_task(
                    list_schedule.run_forever(ctx, interval_seconds=settings.lists_schedule_interval_seconds)
                ),
                asyncio.create_task(
                    governance_sweep.run_forever(
                        ctx, interval_seconds=settings.governance_sweep_interval_seconds
                    )
                ),
                asyncio.create_task(
                    monitoring_schedule.run_forever(
                        ctx, interval_seconds=settings.monitoring_interval_seconds
                    )
                ),
                *(
                    [
                        asyncio.create_task(
                            reconciliation_schedule.run_forever(
                                ctx, interval_seconds=settings.reconcile_schedule_interval_seconds
                            )
                        )
                    ]
                    if settings.reconcile_monthly_enabled
                    else []
                ),
            ]
            # LG-4: the center link's outages, written by a task of their own (monitoring/center_link.py).
            watch = CenterLinkWatch(ctx)
            stop_watching = ctx.center.watch_state(watch.state_changed)
            link_watch = (watch, stop_watching, asyncio.create_task(watch.run_forever()))
        try:
            yield
        finally:
            ctx.outbox_deliver_claimed = None
            await _stop(tasks)
            if link_watch is not None:
                watch, stop_watching, writer = link_watch
                stop_watching()
                # Not cancelled with the others: it writes the link's last changes, then stops.
                await watch.close(writer)
            with contextlib.suppress(Exception):
                await _record_system_event(ctx, "system.stopped")
            await ctx.db.dispose()

    app = FastAPI(
        title="Shokai",
        version="1.0",
        summary="Credit-bureau inquiry gateway with purpose checks and two-person control",
        lifespan=lifespan,
        docs_url=f"{API_PREFIX}/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)

    # Inside RequestContext (added after it is outermost), so a refusal still carries the request id.
    app.add_middleware(RequestGuard, max_body_bytes=ctx.settings.max_request_body_bytes)
    app.add_middleware(RequestContext, ctx=ctx)

    for router in (
        auth_router,
        directory_router,
        audit_router,
        audit_admin_router,
        inquiry_router,
        register_router,
        lists_router,
        governance_router,
        governance_emergency_router,
        hq_router,
        hq_reconciliation_router,
        center_reconciliation_router,
        retention_router,
        escalation_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    # Health endpoints answer both at the root (load balancers, Docker) and under the API prefix (api.md).
    app.include_router(health_router)
    app.include_router(health_router, prefix=API_PREFIX, include_in_schema=False)
    # The confirmer's web panel at /panel (and / redirecting there), on the same services as the API.
    install_panel(app)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = {
            "type": "object",
            "description": "RFC 9457 problem details with a stable machine code",
            "required": ["type", "title", "status", "detail", "code", "request_id"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "request_id": {"type": "string"},
                "violations": {"type": "array", "items": {"type": "string"}},
            },
        }
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory app.main:app_from_environment`` (production, N workers)."""
    return create_app(Settings())
