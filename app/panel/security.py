"""The panel's browser-facing protections: cookies, CSRF tokens, response headers, form parsing (AU-6).

The session cookie carries the same short-lived token the API uses (bound to a server-side session and
to the terminal), so logout, idle timeout, lock and suspension end a panel session exactly as they end
an API session. Nothing here decides who may do what: that stays in app/authz/policy.py.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response

from app.config import Settings
from app.context import AppContext
from app.errors import CsrfRejected, ValidationFailed

PANEL_PATH = "/panel"
SESSION_COOKIE = "shokai_panel"
TERMINAL_COOKIE = "shokai_terminal"
LANGUAGE_COOKIE = "shokai_lang"
LOGIN_NONCE_COOKIE = "shokai_login_nonce"
LOGIN_NOTICE_COOKIE = "shokai_login_notice"
# The terminal binding is the terminal's credential, not the user's: it outlives logins (a year), while
# the user's session cookie dies with the browser session and, earlier, with the server-side session.
TERMINAL_COOKIE_SECONDS = 365 * 24 * 3600
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600

# No inline script or style anywhere: everything comes from /panel/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Pages carry personal data: never kept in a cache or the back/forward history.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 100


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def loopback_demo_settings(settings: Settings, *, host: str, environ: Mapping[str, str]) -> Settings:
    """Plain HTTP on loopback is the demo: only there (and only unless SHOKAI_COOKIE_SECURE says otherwise)
    are the panel's cookies sent without Secure; on any other address they stay Secure (AU-6)."""
    if host in LOOPBACK_HOSTS and "SHOKAI_COOKIE_SECURE" not in environ:
        return settings.model_copy(update={"cookie_secure": False})
    return settings


def set_panel_cookie(
    response: Response, ctx: AppContext, name: str, value: str, *, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PANEL_PATH,
        secure=ctx.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_panel_cookie(response: Response, ctx: AppContext, name: str) -> None:
    response.delete_cookie(
        name, path=PANEL_PATH, secure=ctx.settings.cookie_secure, httponly=True, samesite="strict"
    )


# -- CSRF ---------------------------------------------------------------------------------------------


def csrf_token(ctx: AppContext, binding: str) -> str:
    """A keyed token bound to the server-side session (or, before login, to the login nonce cookie)."""
    return ctx.keyring.blind_index(binding, domain="panel-csrf")


def session_binding(session_id: str) -> str:
    return f"session:{session_id}"


def login_binding(nonce: str) -> str:
    return f"login:{nonce}"


def check_csrf(ctx: AppContext, *, binding: str | None, form: dict[str, str]) -> None:
    presented = form.get("csrf_token", "")
    # Compared as bytes: compare_digest refuses a str with non-ASCII characters (TypeError, a 500), and a
    # forged form may carry any.
    expected = csrf_token(ctx, binding).encode() if binding else b""
    if not binding or not presented or not hmac.compare_digest(presented.encode(), expected):
        raise CsrfRejected("Open the page again and resend the form")


def outcome_proof(ctx: AppContext, *, session_id: str, page: str, outcome: str) -> str:
    """Binds a redirect's success message (``?done=``) to the session and the page that earned it (PRG).

    Without it any link, bookmark or pasted URL could make a list page say it was confirmed, or an
    inquiry page that an approval was refused, while nothing happened."""
    return ctx.keyring.blind_index(f"{session_id}\x1f{page}\x1f{outcome}", domain="panel-outcome")


def outcome_proven(ctx: AppContext, *, session_id: str, page: str, outcome: str, proof: str) -> bool:
    expected = outcome_proof(ctx, session_id=session_id, page=page, outcome=outcome).encode()
    return hmac.compare_digest(proof.encode(), expected)  # bytes: the query may carry any text


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


# -- the terminal binding -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalBinding:
    terminal_id: str
    key: str


def cookie(request: Request, name: str) -> str | None:
    """A cookie as the panel set it, or None.

    Every value the panel sets is printable ASCII. A client can make up others: cookie syntax unquotes
    octal escapes, so ``"T\\000X"`` reads as a NUL, which PostgreSQL refuses in a query (a 500), and
    other control characters would only ever fail to match. Such a value is treated as no cookie."""
    value = request.cookies.get(name)
    if value is None or not (value.isascii() and value.isprintable()):
        return None
    return value


def terminal_of(request: Request) -> TerminalBinding | None:
    raw = cookie(request, TERMINAL_COOKIE) or ""
    terminal_id, _, key = raw.partition(":")
    if not terminal_id or not key:
        return None
    return TerminalBinding(terminal_id[:40], key[:200])


def terminal_cookie_value(binding: TerminalBinding) -> str:
    return f"{binding.terminal_id}:{binding.key}"


# -- the one-time login notice (AU-3) -----------------------------------------------------------------


def signed_notice(ctx: AppContext, notice: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(notice, separators=(",", ":")).encode()).decode()
    return f"{body}.{ctx.keyring.blind_index(body, domain='panel-notice')}"


def read_notice(ctx: AppContext, value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    body, _, mac = value.partition(".")
    expected = ctx.keyring.blind_index(body, domain="panel-notice").encode()
    if not mac or not hmac.compare_digest(mac.encode(), expected):  # bytes: the cookie may be any text
        return None
    try:
        notice = json.loads(base64.urlsafe_b64decode(body.encode()))
    except ValueError:
        return None
    return notice if isinstance(notice, dict) else None


# -- forms ----------------------------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; anything else is refused, never a 500."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ValidationFailed("Send the form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationFailed("The form is too large")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("The form is not valid") from exc
    return {name: value for name, value in pairs}


def safe_next(target: str | None) -> str:
    """Only a path inside the panel: a login link must never send anyone elsewhere."""
    if target and target.startswith(PANEL_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PANEL_PATH + "/"
