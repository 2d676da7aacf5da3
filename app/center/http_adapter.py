"""``HttpCenterLink``: the center link over HTTP with httpx (ER-3, RC-1, EN-3).

Speaks the contract of api.md ("The center link") to the bundled simulator or to a center that
implements it. What it adds around each call:

* **Timeouts** — connect/read/write timeouts on the socket, plus one deadline around each attempt,
  because an in-process ASGI transport (the embedded simulator) ignores httpx's socket timeouts.
* **Retries** — transient failures (timeouts, refused or dropped connections, 5xx, 408, 429) are retried
  a bounded number of times with exponential backoff and jitter, always resending the *same* body and
  so the same idempotency key: the center answers a repeat with its first answer and records one
  inquiry (ER-2, ER-3). Anything else the center says (4xx with a ``code``) is definitive and raised
  as :class:`CenterRefused` at once.
* **Circuit breaker** — shared by all calls of one link (app/center/circuit.py); while it is open calls
  fail at once with ``CenterUnavailable("circuit_open")`` and the outbox keeps its rows for later.
* **Mutual TLS** (EN-3) — client certificate and key plus the CA bundle that signs the center's server
  certificate, given as paths in :class:`CenterLinkSettings`.

An ``httpx.AsyncClient`` or transport can be injected, which is how the gateway mounts the simulator
in-process (``httpx.ASGITransport`` or app.center.simulator.simulator_transport).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from app.center.circuit import CircuitBreaker, CircuitOpen, CircuitState
from app.center.interface import (
    CENTER_ANSWER_CODES,
    CenterAnswer,
    CenterCancellation,
    CenterCancelRequest,
    CenterCorrection,
    CenterCorrectRequest,
    CenterInquiryRequest,
    CenterLink,
    CenterRecordEntry,
    CenterRecordPage,
    CenterRefused,
    CenterUnavailable,
)
from app.clock import Clock

log = logging.getLogger("shokai.center")

API_PREFIX = "/center/v1"
_TRANSIENT_STATUSES = frozenset({408, 429})
_SAFE_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

ModelT = TypeVar("ModelT", bound=BaseModel)
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class CenterLinkSettings:
    base_url: str
    member_code: str
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = 10.0
    write_timeout_seconds: float = 5.0
    # Attempts per call, the first included; the outbox retries the call itself much later.
    max_attempts: int = 4
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0
    breaker_failure_threshold: int = 5
    breaker_cool_down_seconds: float = 30.0
    record_page_size: int = 1000
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    tls_ca_bundle: Path | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 1 <= self.record_page_size <= 1000:
            raise ValueError("record_page_size must be 1..1000 (the center's page limit)")
        if self.tls_client_key is not None and self.tls_client_cert is None:
            raise ValueError("tls_client_key needs tls_client_cert")
        uses_tls_files = any(p is not None for p in (self.tls_client_cert, self.tls_ca_bundle))
        if uses_tls_files and not self.base_url.startswith("https://"):
            # Certificates configured for a plain-HTTP URL means the link is not what the operator thinks.
            raise ValueError("TLS files are configured but base_url is not https://")

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.read_timeout_seconds,
            write=self.write_timeout_seconds,
            pool=self.connect_timeout_seconds,
        )

    @property
    def attempt_deadline_seconds(self) -> float:
        return self.connect_timeout_seconds + self.write_timeout_seconds + self.read_timeout_seconds

    @property
    def slowest_call_seconds(self) -> float:
        """The longest one call can take: every attempt to its deadline, with the longest backoffs between."""
        backoffs = sum(
            min(self.backoff_max_seconds, self.backoff_initial_seconds * 2 ** (attempt - 1))
            for attempt in range(1, self.max_attempts)
        )
        return self.max_attempts * self.attempt_deadline_seconds + backoffs


class InsecureCenterLink(ValueError):
    """The configured center link would carry inquiries without the protection EN-3 requires."""


def _is_loopback(host: str) -> bool:
    """Only ``localhost`` and loopback addresses: a name like ``127.example.com`` can point anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport_security(settings: CenterLinkSettings, *, mutual_tls_required: bool) -> None:
    """Refuse a center link over the network that is not mutual TLS (EN-3); raises InsecureCenterLink.

    A center on this machine (the simulator as its own process, a loopback tunnel) may be plain HTTP:
    nothing leaves the host. Anywhere else the subject's identity would cross the network, so the URL
    must be https and, unless the center prescribes another method (``mutual_tls_required`` off), the
    gateway must present a client certificate.
    """
    url = httpx.URL(settings.base_url)
    if _is_loopback(url.host):
        return
    if url.scheme != "https":
        raise InsecureCenterLink(
            f"the center link to {url.host} is {url.scheme}://, not https:// (EN-3: TLS in production)"
        )
    if mutual_tls_required and settings.tls_client_cert is None:
        raise InsecureCenterLink(
            "the center link needs a client certificate for mutual TLS (SHOKAI_CENTER_TLS_CLIENT_CERT "
            "and _KEY), or SHOKAI_CENTER_MUTUAL_TLS_REQUIRED=false where the center prescribes otherwise"
        )


def tls_context(settings: CenterLinkSettings) -> ssl.SSLContext | None:
    """The client-side TLS context for mutual TLS, or None to use httpx's default verification."""
    if settings.tls_client_cert is None and settings.tls_ca_bundle is None:
        return None
    context = ssl.create_default_context(
        cafile=str(settings.tls_ca_bundle) if settings.tls_ca_bundle is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_client_cert is not None:
        context.load_cert_chain(
            certfile=str(settings.tls_client_cert),
            keyfile=str(settings.tls_client_key) if settings.tls_client_key is not None else None,
        )
    return context


class _Transient(Exception):
    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class HttpCenterLink:
    """The :class:`~app.center.interface.CenterLink` over HTTP. Use as an async context manager or
    call :meth:`aclose`; an injected client is left open for its owner."""

    def __init__(
        self,
        settings: CenterLinkSettings,
        *,
        clock: Clock,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if client is not None and transport is not None:
            raise ValueError("inject a client or a transport, not both")
        self.settings = settings
        self._base = settings.base_url.rstrip("/") + API_PREFIX
        self._owns_client = client is None
        if client is None:
            verify: ssl.SSLContext | bool = tls_context(settings) or True
            # A center on this machine is reached directly: an HTTP_PROXY in the environment would
            # otherwise carry its plain-http traffic off the machine (check_transport_security allows
            # plain http only because nothing leaves the host). A remote center honours the proxy.
            client = httpx.AsyncClient(
                verify=verify,
                transport=transport,
                timeout=settings.timeout,
                trust_env=not _is_loopback(httpx.URL(settings.base_url).host),
            )
        self._client = client
        self.breaker = breaker or CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            cool_down=timedelta(seconds=settings.breaker_cool_down_seconds),
            clock=clock,
            on_state_change=_log_state_change,
        )
        self._sleep = sleep
        # Jitter only spreads retries apart; it needs no cryptographic quality.
        self._rng = rng or random.Random()  # noqa: S311

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    @property
    def state(self) -> CircuitState:
        """The link's health as the breaker sees it (for /readyz and the LG-4 status events)."""
        return self.breaker.state

    def watch_state(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        return self.breaker.add_listener(listener)

    # -- the interface --------------------------------------------------------------------------------

    async def inquire(self, request: CenterInquiryRequest) -> CenterAnswer:
        if request.member_code != self.settings.member_code:
            # Sending under another member's code would put the inquiry on someone else's record.
            raise CenterRefused("MEMBER_CODE_MISMATCH")
        body = request.model_dump(mode="json", exclude_none=True)
        return await self._call("POST", "/inquiries", CenterAnswer, json_body=body)

    async def cancel(self, center_inquiry_id: str, reason: str, idempotency_key: str) -> CenterCancellation:
        body = CenterCancelRequest(reason=reason, idempotency_key=idempotency_key).model_dump(mode="json")
        path = f"/inquiries/{quote(center_inquiry_id, safe='')}/cancel"
        return await self._call("POST", path, CenterCancellation, json_body=body)

    async def correct(self, center_inquiry_id: str, request: CenterCorrectRequest) -> CenterCorrection:
        path = f"/inquiries/{quote(center_inquiry_id, safe='')}/correct"
        return await self._call("POST", path, CenterCorrection, json_body=request.model_dump(mode="json"))

    async def inquiry_record(
        self, member_code: str, date_from: date, date_to: date
    ) -> AsyncIterator[CenterRecordEntry]:
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {
                "member_code": member_code,
                "from": date_from.isoformat(),
                "to": date_to.isoformat(),
                "limit": self.settings.record_page_size,
            }
            if cursor is not None:
                params["cursor"] = cursor
            page = await self._call("GET", "/inquiry-record", CenterRecordPage, params=params)
            for entry in page.items:
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- one call: attempts, backoff, breaker ------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> ModelT:
        attempts = 0
        last: _Transient | None = None
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                epoch = self.breaker.before_call()
            except CircuitOpen as exc:
                raise CenterUnavailable(
                    "circuit_open", attempts=attempts, retry_after=exc.retry_after
                ) from None
            attempts = attempt
            try:
                result = await self._attempt(method, path, model, json_body=json_body, params=params)
            except _Transient as failure:
                self.breaker.record_failure(epoch)
                last = failure
                log.warning(
                    "center call %s %s failed (attempt %d/%d): %s",
                    method,
                    path.split("/")[1],
                    attempt,
                    self.settings.max_attempts,
                    failure.reason,
                )
                if attempt == self.settings.max_attempts or self.breaker.state is not CircuitState.CLOSED:
                    break
                await self._sleep(self._backoff(attempt))
                continue
            except CenterRefused:
                self.breaker.record_success()
                raise
            self.breaker.record_success()
            return result
        assert last is not None
        raise CenterUnavailable(last.reason, attempts=attempts, status=last.status)

    async def _attempt(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        *,
        json_body: dict[str, Any] | None,
        params: dict[str, str | int] | None,
    ) -> ModelT:
        try:
            async with asyncio.timeout(self.settings.attempt_deadline_seconds):
                response = await self._client.request(
                    method,
                    self._base + path,
                    json=json_body,
                    params=params,
                    timeout=self.settings.timeout,
                    headers={"X-Center-Member": self.settings.member_code},
                )
        except (TimeoutError, httpx.TimeoutException):
            raise _Transient("timeout") from None
        except httpx.ConnectError:
            raise _Transient("connect_failed") from None
        except httpx.TransportError as exc:
            # Dropped connections, protocol errors, a failed TLS handshake: the request may or may not
            # have reached the center, which is exactly what the idempotency key is for.
            raise _Transient(f"transport_{type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            # The rest of httpx's errors (an answer whose content encoding cannot be decoded, say) are no
            # answer either: transient like the above, so the row is put back at once instead of waiting
            # out its lease, and the breaker counts it.
            raise _Transient(f"http_error_{type(exc).__name__}") from None
        status = response.status_code
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise _Transient(f"http_{status}", status)
        if status >= 400:
            refusal = _refusal(response)
            if refusal.code not in CENTER_ANSWER_CODES:
                raise _Transient(f"http_{status}", status)
            raise refusal
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            # The center said yes but the answer cannot be read; a retry replays the same answer, so this
            # stays transient for the outbox and is loud in the log.
            raise _Transient("malformed_answer", status) from None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self.settings.backoff_max_seconds, self.settings.backoff_initial_seconds * 2 ** (attempt - 1)
        )
        # "Equal jitter": never less than half the step, so retries still back off, but spread apart so
        # a crowd of queued inquiries does not hit a recovering center in lockstep.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def _refusal(response: httpx.Response) -> CenterRefused:
    code = f"HTTP_{response.status_code}"
    center_inquiry_id: str | None = None
    received_at: datetime | None = None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        # Only a well-formed code travels on: the message of the exception must never carry free text.
        if isinstance(raw_code, str) and _SAFE_CODE.match(raw_code):
            code = raw_code
        raw_id = body.get("center_inquiry_id")
        if isinstance(raw_id, str) and len(raw_id) <= 64:
            center_inquiry_id = raw_id
        received_at = _aware_time(body.get("received_at"))
    return CenterRefused(
        code, status=response.status_code, center_inquiry_id=center_inquiry_id, received_at=received_at
    )


def _aware_time(raw: object) -> datetime | None:
    """An RFC 3339 time with its offset, or None: a refusal's time is kept only when it is unambiguous."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _log_state_change(previous: CircuitState, current: CircuitState) -> None:
    log.warning("center link circuit %s -> %s", previous.value, current.value)


if TYPE_CHECKING:
    # mypy proves the adapter satisfies the interface the gateway is written against.
    def _conforms(link: HttpCenterLink) -> CenterLink:
        return link
