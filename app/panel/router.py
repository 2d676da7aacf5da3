"""The confirmer's web panel (methods A–D, AU-3, AU-6, PR-1): thin routes over the API's own services.

Each route parses a form, calls the same service function the API calls, and renders a template.
Who may do what is decided by the services and app/authz/policy.py; the panel asks ``may`` only to
choose which actions to offer, so a refused action is still refused by the service, with its code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz import directory
from app.authz import service as authz_service
from app.authz.password_policy import violation_message
from app.authz.policy import authorize, may
from app.authz.principal import Principal
from app.authz.service import password_policy
from app.clock import business_date_of
from app.context import AppContext
from app.crypto.sealed_text import open_text
from app.deps import Context, DbSession, Origin
from app.errors import DomainError, MyNumberForbidden, PasswordPolicyViolated, ValidationFailed
from app.escalation import service as escalation_service
from app.escalation.schemas import AcknowledgeEscalationIn
from app.hq import service as hq_service
from app.hq.models import HqRequest
from app.inquiry import service as inquiry_service
from app.inquiry.models import Inquiry, SealedResponse
from app.inquiry.schemas import ReleaseRequest
from app.inquiry.sealing import open_subject
from app.inquiry.subject import typed_an_individual_number
from app.lists import service as lists_service
from app.lists.formats import render_csv, render_pdf
from app.lists.models import DailyList
from app.lists.router import file_view as list_file_view
from app.lists.router import lines_out as list_lines
from app.lists.schemas import CheckRequest, ConfirmRequest
from app.panel import views
from app.panel.i18n import LANGUAGES, Language, error_message, language_of, translator
from app.panel.security import (
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_SECONDS,
    LOGIN_NONCE_COOKIE,
    LOGIN_NOTICE_COOKIE,
    PAGE_HEADERS,
    PANEL_PATH,
    SESSION_COOKIE,
    TERMINAL_COOKIE,
    TERMINAL_COOKIE_SECONDS,
    TerminalBinding,
    check_csrf,
    clear_panel_cookie,
    cookie,
    csrf_token,
    login_binding,
    new_login_nonce,
    outcome_proof,
    outcome_proven,
    read_form,
    read_notice,
    safe_next,
    session_binding,
    set_panel_cookie,
    signed_notice,
    terminal_cookie_value,
    terminal_of,
)
from app.problems import record_refusal
from app.retention.service import use_period_end

router = APIRouter(prefix=PANEL_PATH, include_in_schema=False)

_CODE = re.compile(r"^[A-Z][A-Z_]{2,40}$")
# One-word outcomes a redirect may carry back to the page (PRG), each with its message key.
_DONE_MESSAGES = {
    "password_changed": "password.changed",
    "refused": "inquiry.refused",
    "checked": "list.checked",
    "confirmed": "list.done",
    "acknowledged": "escalation.acknowledged",
}
# Success messages of pages rendered straight from a form post: never taken from a URL, so no link can
# make a page claim a release that did not happen.
_POSTED_MESSAGES = {"released": "release.done"}
_LINE_CHECKS = ("matched", "mismatch", "document_missing")
# Hints a refusal may add to its message on the page (a text over the API's length limit).
_HINTS = {"too_long": "error.hint.too_long"}
_Form = TypeVar("_Form", bound=BaseModel)
_NO_STORE = {"Cache-Control": "no-store"}


class PanelRedirect(Exception):
    """Send the browser elsewhere (to the login page when the session is gone)."""

    def __init__(self, location: str, *, end_session: bool = False) -> None:
        super().__init__(location)
        self.location = location
        self.end_session = end_session


class PanelRefusal(Exception):
    """A form refused before its route ran (no CSRF token, not a form): an HTML error page, not JSON."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.code)
        self.error = error


# -- rendering ------------------------------------------------------------------------------------------


def _language(request: Request) -> Language:
    return language_of(cookie(request, LANGUAGE_COOKIE))


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    status_code: int = 200,
    csrf: str | None = None,
    done: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """A panel page. ``done`` names the success message of a page rendered straight from a form post
    (otherwise it comes from the redirect's ``?done=``); every page shows it in the same place."""
    ctx: AppContext = request.app.state.ctx
    environment: Environment = request.app.state.panel_templates
    language = _language(request)
    t = translator(language)
    idle_seconds = None
    if principal is not None and principal.idle_expires_at is not None:
        idle_seconds = max(0, int((principal.idle_expires_at - ctx.clock.now()).total_seconds()))
    message = _POSTED_MESSAGES[done] if done else _proven_outcome(request, ctx, principal)
    error = request.query_params.get("error", "")
    hint = request.query_params.get("hint", "")
    html = environment.get_template(template).render(
        t=t,
        lang=language,
        other_lang=next(code for code in LANGUAGES if code != language),
        here=_here(request),
        principal=principal,
        csrf=csrf
        if csrf is not None
        else (csrf_token(ctx, session_binding(principal.session_id)) if principal else ""),
        idle_seconds=idle_seconds,
        may=(lambda action, branch=None: may(principal, action, branch_code=branch))
        if principal
        else (lambda action, branch=None: False),
        fmt_datetime=lambda at: views.format_datetime(at, language),
        fmt_date=lambda day: views.format_date(day, language),
        fmt_deadline=lambda at: views.format_deadline(at, language),
        fmt_amount=views.format_amount,
        purpose_label=lambda code: _purpose_label(ctx, language, code),
        staff=lambda user_id: views.staff_label(values.get("staff_names", {}), user_id, language),
        # Named as every page names staff, so the user knows themselves in the tables.
        signed_in_as=views.staff_label({principal.id: principal.name}, principal.id, language)
        if principal
        else "",
        document_label=lambda code: _document_label(ctx, language, code),
        escalation_note=lambda e: views.escalation_note(e.kind, escalation_service.note_of(ctx, e), t),
        escalation_handling=lambda e: escalation_service.acknowledgement_note_of(ctx, e),
        escalation_line=lambda e: views.escalation_line(e.kind, e.note),
        flash=t(message, line=request.query_params.get("line", "")) if message else None,
        flash_error=error_message(language, error) if _CODE.match(error) else None,
        flash_error_code=error if _CODE.match(error) else None,
        flash_hint=_hint(t, hint, request.query_params.get("line", "")) if _CODE.match(error) else None,
        # Staff see at once why their inquiries stay queued (ER-3) instead of finding out one by one.
        center_link_down=principal is not None and ctx.center.state != "closed",
        **values,
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _proven_outcome(request: Request, ctx: AppContext, principal: Principal | None) -> str | None:
    """The message key of the redirect's ``?done=``, only when :func:`_done_redirect` wrote it for this
    session and this page."""
    outcome = request.query_params.get("done", "")
    if principal is None or outcome not in _DONE_MESSAGES:
        return None
    proven = outcome_proven(
        ctx,
        session_id=principal.session_id,
        page=_outcome_page(request.url.path, request.query_params.get("line")),
        outcome=outcome,
        proof=request.query_params.get("proof", ""),
    )
    return _DONE_MESSAGES[outcome] if proven else None


def _outcome_page(path: str, line: str | None) -> str:
    # The line is part of the page's claim: "line 3 checked" must not be moved to another line.
    return path if line is None else f"{path}#{line}"


def _done_redirect(
    ctx: AppContext,
    principal: Principal,
    path: str,
    outcome: str,
    *,
    line: int | None = None,
    anchor: str = "",
) -> RedirectResponse:
    """Back to ``path`` after a form did what it asked (PRG), carrying the success message and its proof."""
    proof = outcome_proof(
        ctx,
        session_id=principal.session_id,
        page=_outcome_page(path, None if line is None else str(line)),
        outcome=outcome,
    )
    query = f"done={outcome}" + ("" if line is None else f"&line={line}") + f"&proof={proof}"
    return _redirect(f"{path}?{query}{anchor}")


def _hint(t: Callable[..., str], hint: str, line: str) -> str | None:
    """What to change, naming the list line whose note was refused: the page holds many note fields."""
    if hint not in _HINTS:
        return None
    if line.isascii() and line.isdigit() and len(line) <= 9:
        return t(f"{_HINTS[hint]}_line", limit=400, line=line)
    return t(_HINTS[hint], limit=400)


def _purpose_label(ctx: AppContext, language: Language, code: str) -> str:
    rule = ctx.policy.purposes.get(code)
    if language == "ja" and rule is not None:
        return rule.label_ja
    return translator(language)(f"purpose.{code}")


def _document_label(ctx: AppContext, language: Language, code: str) -> str:
    if language == "ja" and code in ctx.policy.documents:
        return ctx.policy.documents[code]
    return translator(language)(f"document.{code}")


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _refused(request: Request, session: AsyncSession, exc: DomainError) -> None:
    """A refusal shown on a page is recorded exactly like the API's (LG-1), by the same function."""
    await session.rollback()
    await record_refusal(request, exc)


async def _error_page(
    request: Request, session: AsyncSession, ctx: AppContext, principal: Principal, exc: DomainError
) -> HTMLResponse:
    await _refused(request, session, exc)
    return _render(
        request,
        "error.html",
        principal=principal,
        status_code=exc.status,
        message=error_message(_language(request), exc.code),
        code=exc.code,
    )


async def _record_view(session: AsyncSession, principal: Principal, inquiry: Inquiry, *, page: str) -> None:
    """Every panel page showing a subject's data is an audit event (LG-1, AC-6): pseudonym, never name."""
    record(
        session,
        actor=principal.actor(),
        action="panel.inquiry_viewed",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"page": page, "subject_pseudonym": inquiry.subject_pseudonym},
    )
    await session.commit()


# -- who is calling -------------------------------------------------------------------------------------


def _login_url(request: Request, reason: str) -> str:
    target = _here(request) if request.method == "GET" else f"{PANEL_PATH}/"
    return f"{PANEL_PATH}/login?reason={quote(reason)}&next={quote(target, safe='')}"


async def _panel_user(request: Request, session: DbSession, ctx: Context, origin: Origin) -> Principal:
    """The session cookie's principal, checked exactly as the API checks a bearer token (AU-1, AU-6)."""
    token = cookie(request, SESSION_COOKIE)
    if not token:
        raise PanelRedirect(_login_url(request, "required"))
    binding = terminal_of(request)
    try:
        principal = await authz_service.authenticate(
            session,
            ctx=ctx,
            token=token,
            terminal_header=binding.terminal_id if binding else None,
            origin=origin,
        )
    except DomainError as exc:
        if exc.status != 401:
            raise
        raise PanelRedirect(_login_url(request, exc.code), end_session=True) from exc
    if principal.kind != "user":
        raise PanelRedirect(_login_url(request, "required"), end_session=True)
    request.state.principal = principal
    return principal


async def _ready_user(principal: Annotated[Principal, Depends(_panel_user)]) -> Principal:
    if principal.password_change_required:
        raise PanelRedirect(f"{PANEL_PATH}/password")
    return principal


# Logged in, even if the password must be changed first (only /password and /logout).
AnyPanelUser = Annotated[Principal, Depends(_panel_user)]
# Logged in with a current password.
PanelUser = Annotated[Principal, Depends(_ready_user)]


async def _checked_request(request: Request, ctx: AppContext, binding: str | None) -> dict[str, str]:
    try:
        form = await read_form(request)
        check_csrf(ctx, binding=binding, form=form)
    except DomainError as exc:
        raise PanelRefusal(exc) from exc
    return form


async def _form(request: Request, ctx: AppContext, principal: Principal) -> dict[str, str]:
    return await _checked_request(request, ctx, session_binding(principal.session_id))


# -- login, logout, password (AU-3, AU-4, AU-6, AU-7) -----------------------------------------------------


def _login_page(
    request: Request,
    ctx: AppContext,
    *,
    nonce: str,
    next_page: str,
    reason: str | None = None,
    error_code: str | None = None,
    status_code: int = 200,
    user_id: str = "",
) -> HTMLResponse:
    t = translator(_language(request))
    reason_key = f"login.reason.{reason}" if reason else ""
    response = _render(
        request,
        "login.html",
        principal=None,
        status_code=status_code,
        csrf=csrf_token(ctx, login_binding(nonce)),
        reason=t(reason_key) if reason and t(reason_key) != reason_key else None,
        error=error_message(_language(request), error_code) if error_code else None,
        error_code=error_code,
        next_page=next_page,
        terminal=terminal_of(request),
        change_terminal=request.query_params.get("terminal") == "change",
        user_id=user_id,
    )
    set_panel_cookie(response, ctx, LOGIN_NONCE_COOKIE, nonce)
    return response


@router.get("/login")
async def login_page(
    request: Request,
    ctx: Context,
    reason: Annotated[str | None, Query(max_length=40)] = None,
    next_page: Annotated[str | None, Query(alias="next", max_length=300)] = None,
) -> HTMLResponse:
    nonce = cookie(request, LOGIN_NONCE_COOKIE) or new_login_nonce()
    return _login_page(request, ctx, nonce=nonce, next_page=safe_next(next_page), reason=reason)


@router.post("/login")
async def login(request: Request, session: DbSession, ctx: Context, origin: Origin) -> Response:
    nonce = cookie(request, LOGIN_NONCE_COOKIE)
    form = await _checked_request(request, ctx, login_binding(nonce) if nonce else None)
    assert nonce is not None
    next_page = safe_next(form.get("next"))
    user_id = form.get("user_id", "").strip()[:80]
    password = form.get("password", "")[:1024]
    typed_id, typed_key = form.get("terminal_id", "").strip()[:40], form.get("terminal_key", "").strip()[:200]
    typed = TerminalBinding(typed_id, typed_key) if typed_id or typed_key else None
    terminal = typed or terminal_of(request)
    if not user_id or not password:
        return _login_page(
            request, ctx, nonce=nonce, next_page=next_page, error_code="VALIDATION_ERROR", status_code=422
        )
    try:
        result = await authz_service.login(
            session,
            ctx=ctx,
            user_id=user_id,
            password=password,
            terminal_id=terminal.terminal_id if terminal else None,
            terminal_key=terminal.key if terminal else None,
            origin=origin,
            totp=form.get("totp", "").strip()[:12] or None,
        )
    except DomainError as exc:
        await session.rollback()
        return _login_page(
            request,
            ctx,
            nonce=new_login_nonce(),
            next_page=next_page,
            error_code=exc.code,
            status_code=exc.status,
            user_id=user_id,
        )
    previous = result.previous_login
    notice = {
        "first": previous is None,
        "at": previous.at.isoformat() if previous else None,
        "terminal": previous.terminal_id if previous else None,
        "address": previous.address if previous else None,
        "failed": result.failed_attempts_since_previous_login,
    }
    response = _redirect(f"{PANEL_PATH}/password" if result.must_change_password else next_page)
    # A browser-session cookie: no "remember me" (AU-6); the server-side session decides its life.
    set_panel_cookie(response, ctx, SESSION_COOKIE, result.access_token)
    set_panel_cookie(response, ctx, LOGIN_NOTICE_COOKIE, signed_notice(ctx, notice))
    if typed is not None and terminal is not None:
        set_panel_cookie(
            response, ctx, TERMINAL_COOKIE, terminal_cookie_value(terminal), max_age=TERMINAL_COOKIE_SECONDS
        )
    clear_panel_cookie(response, ctx, LOGIN_NONCE_COOKIE)
    return response


def _take_notice(request: Request, ctx: AppContext) -> dict[str, Any] | None:
    notice = read_notice(ctx, cookie(request, LOGIN_NOTICE_COOKIE))
    if notice is not None and notice.get("at"):
        at = datetime.fromisoformat(str(notice["at"]))
        notice["at_text"] = views.format_datetime(at, _language(request))
    return notice


@router.post("/logout")
async def logout(request: Request, principal: AnyPanelUser, session: DbSession, ctx: Context) -> Response:
    await _form(request, ctx, principal)
    await authz_service.logout(session, ctx=ctx, principal=principal)
    response = _redirect(f"{PANEL_PATH}/login?reason=logged_out")
    clear_panel_cookie(response, ctx, SESSION_COOKIE)
    return response


def _password_page(
    request: Request,
    ctx: AppContext,
    principal: Principal,
    *,
    violations: list[str] | None = None,
    error_code: str | None = None,
    mismatch: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    language = _language(request)
    policy = password_policy(ctx)
    notice = _take_notice(request, ctx)
    response = _render(
        request,
        "password.html",
        principal=principal,
        status_code=status_code,
        notice=notice,
        required=principal.password_change_required,
        rules=translator(language)(
            "password.rules", min_length=policy.min_length, history_depth=policy.history_depth
        ),
        violations=[violation_message(v, policy=policy, lang=language) for v in violations or []],
        error=error_message(language, error_code) if error_code else None,
        error_code=error_code,
        mismatch=mismatch,
    )
    if notice is not None:
        clear_panel_cookie(response, ctx, LOGIN_NOTICE_COOKIE)
    return response


@router.get("/password")
async def password_page(request: Request, principal: AnyPanelUser, ctx: Context) -> HTMLResponse:
    return _password_page(request, ctx, principal)


@router.post("/password")
async def change_password(
    request: Request, principal: AnyPanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    new_password = form.get("new_password", "")[:1024]
    if new_password != form.get("repeat_password", "")[:1024]:
        return _password_page(request, ctx, principal, mismatch=True, status_code=422)
    try:
        await authz_service.change_password(
            session,
            ctx=ctx,
            principal=principal,
            current_password=form.get("current_password", "")[:1024],
            new_password=new_password,
        )
    except PasswordPolicyViolated as exc:
        await session.rollback()
        return _password_page(
            request, ctx, principal, violations=list(exc.extra.get("violations", [])), status_code=422
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        if exc.status == 401 and exc.code != "INVALID_CREDENTIALS":
            raise PanelRedirect(_login_url(request, exc.code), end_session=True) from exc
        return _password_page(request, ctx, principal, error_code=exc.code, status_code=exc.status)
    return _done_redirect(ctx, principal, f"{PANEL_PATH}/", "password_changed")


@router.get("/lang/{language}")
async def switch_language(
    language: str, ctx: Context, next_page: Annotated[str | None, Query(alias="next", max_length=300)] = None
) -> Response:
    """A display preference only; it changes nothing on the server, so it needs no form."""
    response = _redirect(safe_next(next_page))
    set_panel_cookie(response, ctx, LANGUAGE_COOKIE, language_of(language), max_age=LANGUAGE_COOKIE_SECONDS)
    return response


# -- the dashboard ----------------------------------------------------------------------------------------


async def _calendar_branches(session: AsyncSession, principal: Principal) -> list[str]:
    if may(principal, "lists.read", branch_code="*"):
        return [b.code for b in await directory.list_branches(session) if b.status == "active"]
    return sorted(code for code in principal.branch_codes if may(principal, "lists.read", branch_code=code))


# Rows per dashboard table: the oldest first, so what is cut off is the newest work.
DASHBOARD_ROWS = 100
OVERSIGHT_ROWS = 200


@router.get("/")
async def dashboard(
    request: Request,
    principal: PanelUser,
    session: DbSession,
    ctx: Context,
    month: Annotated[str | None, Query(max_length=7)] = None,
) -> HTMLResponse:
    now = ctx.clock.now()
    today = business_date_of(now)
    asked = views.parse_month(month) if month is not None else None
    year, month_no = asked or (today.year, today.month)
    drafts: list[Inquiry] = []
    held: list[Inquiry] = []
    # Which tables hold more than they show: their tiles say "100+" and the table says it is cut.
    more: set[str] = set()
    if may(principal, "inquiry.approve"):
        drafts, cut = await inquiry_service.awaiting_approval(
            session, principal=principal, limit=DASHBOARD_ROWS
        )
        if cut:
            more.add("drafts")
    if may(principal, "inquiry.release"):
        held, cut = await inquiry_service.awaiting_release(
            session, ctx=ctx, principal=principal, limit=DASHBOARD_ROWS
        )
        if cut:
            more.add("held")
    pending: list[DailyList] = []
    overdue: list[DailyList] = []
    weeks: list[Any] = []
    branches: list[str] = []
    if may(principal, "lists.read"):
        # One row more than shown tells whether the table is cut.
        pending = await _search_lists(session, ctx, principal, state="pending", limit=DASHBOARD_ROWS + 1)
        overdue = await _search_lists(session, ctx, principal, state="overdue", limit=DASHBOARD_ROWS + 1)
        for name, rows in (("pending", pending), ("overdue", overdue)):
            if len(rows) > DASHBOARD_ROWS:
                more.add(name)
                del rows[DASHBOARD_ROWS:]
        branches = await _calendar_branches(session, principal)
        weeks = await _month(session, ctx, principal, branches, year=year, month=month_no, today=today)
    open_escalations = None
    if may(principal, "escalation.read"):
        open_escalations = await escalation_service.count_open(session, principal=principal)
    notice = _take_notice(request, ctx)
    previous, following = views.previous_month(year, month_no), views.next_month(year, month_no)
    response = _render(
        request,
        "dashboard.html",
        principal=principal,
        staff_names=await directory.staff_names(session, (i.operator_id for i in [*drafts, *held])),
        notice=notice,
        drafts=drafts,
        held=held,
        pending=pending,
        overdue=overdue,
        open_escalations=open_escalations,
        more=more,
        shown=DASHBOARD_ROWS,
        now=now,
        weeks=weeks,
        branches=branches,
        year=year,
        month=month_no,
        previous_month=views.month_link(*previous),
        next_month=views.month_link(*following),
        this_month=None
        if (year, month_no) == (today.year, today.month)
        else views.month_link(today.year, today.month),
        # A business day without its lists is a gap the clerk cannot fix from here (DL-1): said, not only
        # drawn, so that it is not read as one more state to wait out.
        missing_days=views.days_in_state(weeks, "missing"),
        # Said on the page, not passed over: the clerk asked for another month than the one shown.
        month_unreadable=month is not None and asked is None,
        list_state=lambda daily: lists_service.effective_state(ctx, daily),
    )
    if notice is not None:
        clear_panel_cookie(response, ctx, LOGIN_NOTICE_COOKIE)
    return response


async def _search_lists(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    *,
    state: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int = 200,
) -> list[DailyList]:
    return await lists_service.search(
        session,
        ctx,
        principal=principal,
        branch_code=None,
        date_from=date_from,
        date_to=date_to,
        kind=None,
        state=state,
        limit=limit,
    )


# Lists read per query for the calendar; the pages follow the lists' keyset cursor.
_MONTH_PAGE = 500


async def _month_lists(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    branches: list[str],
    *,
    date_from: date,
    date_to: date,
) -> list[DailyList]:
    """Every current list of the period for the calendar's branches, in pages over all of them (one
    query per page, not one per branch: HQ's calendar covers every branch)."""
    shown = set(branches)
    found: list[DailyList] = []
    cursor: str | None = None
    while True:
        page, cursor = await lists_service.search_page(
            session,
            ctx,
            principal=principal,
            date_from=date_from,
            date_to=date_to,
            limit=_MONTH_PAGE,
            cursor=cursor,
        )
        found.extend(daily for daily in page if daily.branch_code in shown)
        if cursor is None:
            return found


async def _month(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    branches: list[str],
    *,
    year: int,
    month: int,
    today: date,
) -> list[list[views.CalendarDay | None]]:
    first = date(year, month, 1)
    following = views.next_month(year, month)
    last = date(following[0], following[1], 1) - timedelta(days=1)
    lists = await _month_lists(session, ctx, principal, branches, date_from=first, date_to=last)
    missing: set[tuple[str, date]] = set()
    # A day's lists are generated after it ends, so only days before today can be missing.
    until = min(last, today - timedelta(days=1))
    if until >= first and branches:
        for code in branches:
            authorize(principal, "lists.read", branch_code=code)
        # One question for all the branches shown (HQ sees hundreds), answered for the bank if need be.
        found = await lists_service.gaps(
            session,
            ctx,
            date_from=first,
            date_to=until,
            branch_code=branches[0] if len(branches) == 1 else None,
        )
        shown = set(branches)
        missing |= {
            (gap["branch_code"], date.fromisoformat(gap["business_date"]))
            for gap in found["missing_lists"]
            if gap["branch_code"] in shown
        }
    return views.month_grid(
        year=year,
        month=month,
        today=today,
        branches=branches,
        lists=[
            views.ListOnDay(
                branch_code=daily.branch_code,
                business_date=daily.business_date,
                state=lists_service.effective_state(ctx, daily),
                no_inquiries=daily.no_inquiries,
                list_id=daily.id,
            )
            for daily in lists
        ],
        missing=missing,
        business_calendar=ctx.calendar,
    )


async def _subject_shown(
    session: AsyncSession,
    ctx: AppContext,
    principal: Principal,
    inquiry: Inquiry,
    *,
    page: str,
    releasing_branch: str | None = None,
) -> dict[str, Any] | None:
    """The inquiry's subject for those allowed to see it; every page that shows it is recorded."""
    if not inquiry_service.may_see_subject(principal, inquiry, releasing_branch=releasing_branch):
        return None
    subject = open_subject(ctx, inquiry)
    await _record_view(session, principal, inquiry, page=page)
    return subject


# -- method A: approving a draft --------------------------------------------------------------------------


@router.get("/inquiries/{inquiry_id}")
async def inquiry_page(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> HTMLResponse:
    try:
        inquiry = await inquiry_service.get_inquiry(session, principal=principal, inquiry_id=inquiry_id)
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    subject = await _subject_shown(session, ctx, principal, inquiry, page="inquiry")
    return _render(
        request,
        "inquiry.html",
        principal=principal,
        inquiry=inquiry,
        offered=await inquiry_service.offered_actions(session, ctx=ctx, principal=principal, inquiry=inquiry),
        staff_names=await directory.staff_names(session, [inquiry.operator_id]),
        subject=subject,
        refusal_reasons=inquiry_service.APPROVAL_REFUSAL_REASONS,
        now=ctx.clock.now(),
    )


@router.post("/inquiries/{inquiry_id}/approval-number")
async def issue_approval_number(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    await _form(request, ctx, principal)
    try:
        number, expires_at = await inquiry_service.issue_approval_number(
            session, ctx=ctx, principal=principal, inquiry_id=inquiry_id
        )
        inquiry = await inquiry_service.get_inquiry(session, principal=principal, inquiry_id=inquiry_id)
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{PANEL_PATH}/inquiries/{quote(inquiry_id)}?error={exc.code}")
    # Shown once, in this response only: it is never stored in clear and never shown again.
    return _render(
        request,
        "approval_number.html",
        principal=principal,
        inquiry=inquiry,
        approval_number=number,
        expires_at=expires_at,
    )


@router.post("/inquiries/{inquiry_id}/refuse")
async def refuse_approval(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    try:
        await inquiry_service.refuse_approval(
            session, ctx=ctx, principal=principal, inquiry_id=inquiry_id, reason=form.get("reason", "")
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{PANEL_PATH}/inquiries/{quote(inquiry_id)}?error={exc.code}")
    return _done_redirect(ctx, principal, f"{PANEL_PATH}/inquiries/{quote(inquiry_id)}", "refused")


# -- method B: releasing a response ----------------------------------------------------------------------


@router.get("/inquiries/{inquiry_id}/release")
async def release_page(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> HTMLResponse:
    try:
        inquiry, duty = await inquiry_service.get_inquiry_and_duty(
            session, ctx=ctx, principal=principal, inquiry_id=inquiry_id
        )
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    # For HQ's answer released at the requesting branch (HQ-2), that branch's confirmer compares it with
    # the document: the subject is shown in that branch's name, and the second factor is its policy's.
    subject = await _subject_shown(
        session, ctx, principal, inquiry, page="release", releasing_branch=duty.branch_code
    )
    return _render(
        request,
        "release.html",
        principal=principal,
        inquiry=inquiry,
        staff_names=await directory.staff_names(session, [inquiry.operator_id]),
        subject=subject,
        totp_required=ctx.policy.totp_required_for(duty.branch_code),
        offered=await inquiry_service.offered_actions(session, ctx=ctx, principal=principal, inquiry=inquiry),
    )


@router.post("/inquiries/{inquiry_id}/release")
async def release(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    document_check = form.get("document_check", "")
    note = form.get("note", "").strip()
    try:
        if document_check not in ("match", "mismatch") or not form.get("password"):
            raise ValidationFailed("Choose match or mismatch and enter your password")
        _checked_form(
            ReleaseRequest,
            password=form.get("password", "")[:1024],
            document_check=document_check,
            note=note or None,
        )
        released = await inquiry_service.release(
            session,
            ctx=ctx,
            principal=principal,
            inquiry_id=inquiry_id,
            password=form.get("password", "")[:1024],
            document_check=document_check,
            note=note or None,
            totp=form.get("totp", "").strip()[:12] or None,
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{PANEL_PATH}/inquiries/{quote(inquiry_id)}/release?{_refusal_query(exc)}")
    return _response_page(
        request,
        ctx,
        principal,
        released.inquiry,
        released.response,
        released.record,
        # A mismatch says what happens next in its own alert instead of a success message.
        done=None if document_check == "mismatch" else "released",
    )


def _response_page(
    request: Request,
    ctx: AppContext,
    principal: Principal,
    inquiry: Inquiry,
    response: SealedResponse,
    answer: dict[str, Any],
    *,
    done: str | None = None,
) -> HTMLResponse:
    """The center's answer as the releasing confirmer, or a reader after them, sees it."""
    return _render(
        request,
        "response.html",
        principal=principal,
        inquiry=inquiry,
        center_inquiry_id=response.center_inquiry_id,
        received_at=response.received_at,
        use_period_end=use_period_end(ctx, response.received_at),
        answer=answer,
        done=done,
        mismatch=inquiry.document_check == "mismatch",
        # Whoever reads the response may see whom it is about, so they read the releaser's note too.
        release_note=open_text(ctx.keyring, inquiry, "release_note"),
    )


@router.get("/inquiries/{inquiry_id}/response")
async def response_page(
    request: Request, inquiry_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> HTMLResponse:
    try:
        inquiry, response, content = await inquiry_service.read_response(
            session, ctx=ctx, principal=principal, inquiry_id=inquiry_id
        )
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    return _response_page(request, ctx, principal, inquiry, response, content)


# -- methods C and D: the daily lists --------------------------------------------------------------------


async def _readable_list(session: AsyncSession, principal: Principal, list_id: str) -> DailyList:
    daily = await lists_service.load_list(session, list_id)
    lists_service.ensure_can_read(principal, daily)
    return daily


@router.get("/lists/{list_id}")
async def list_page(
    request: Request, list_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> HTMLResponse:
    try:
        daily = await _readable_list(session, principal, list_id)
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    content = lists_service.open_content(ctx, daily)
    lines = await list_lines(session, ctx, principal, daily, content)
    await lists_service.record_access(session, principal=principal, daily=daily, how="viewed")
    named = [daily.confirmed_by, *(line.operator_id for line in lines), *(line.checked_by for line in lines)]
    return _render(
        request,
        "list.html",
        principal=principal,
        staff_names=await directory.staff_names(session, named),
        daily=daily,
        lines=lines,
        confirmed_from=await lists_service.confirming_branch(session, daily),
        state=lists_service.effective_state(ctx, daily),
        line_checks=_LINE_CHECKS,
        focus_line=request.query_params.get("line", ""),
    )


def _checked_form(schema: type[_Form], **values: Any) -> _Form:
    """The API's own request model checks the form (same choices, same length limits)."""
    try:
        return schema(**values)
    except PydanticValidationError as exc:
        # Read over the whole form, not only the validator's errors: a number in text that is also too
        # long is still named as what it is, as the API does.
        if typed_an_individual_number(values):
            raise MyNumberForbidden("Remove the Individual Number: the gateway may not collect it") from None
        too_long = any(error["type"] == "string_too_long" for error in exc.errors())
        raise ValidationFailed(
            "Keep the text within 400 characters" if too_long else "Check what you entered",
            hint="too_long" if too_long else None,
        ) from exc


def _refusal_query(exc: DomainError) -> str:
    hint = exc.extra.get("hint")
    return f"error={exc.code}" + (f"&hint={hint}" if hint in _HINTS else "")


@router.post("/lists/{list_id}/lines/{line_no}/check")
async def check_line(
    request: Request, list_id: str, line_no: int, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    back = f"{PANEL_PATH}/lists/{quote(list_id)}"
    try:
        body = _checked_form(
            CheckRequest, result=form.get("result", ""), note=form.get("note", "").strip() or None
        )
        await lists_service.check_line(
            session,
            ctx,
            principal=principal,
            list_id=list_id,
            line_no=line_no,
            result=body.result,
            note=body.note,
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{back}?{_refusal_query(exc)}&line={line_no}#line-{line_no}")
    return _done_redirect(ctx, principal, back, "checked", line=line_no, anchor=f"#line-{line_no}")


_WHOLE_NUMBER = re.compile(r"[0-9０-９]{1,7}")


@router.post("/lists/{list_id}/confirm")
async def confirm_list(
    request: Request, list_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    back = f"{PANEL_PATH}/lists/{quote(list_id)}"
    in_hand_text = form.get("responses_in_hand", "").strip()
    try:
        # Digits as typed on a Japanese keyboard, half- or full-width; not every character str.isdigit()
        # takes (², ①), which int() then refuses.
        if in_hand_text and not _WHOLE_NUMBER.fullmatch(in_hand_text):
            raise ValidationFailed("The number of responses in hand must be a whole number")
        body = _checked_form(
            ConfirmRequest,
            responses_in_hand=int(in_hand_text) if in_hand_text else None,
            attest_no_inquiries=form.get("attest_no_inquiries") == "yes",
            late_reason=form.get("late_reason", "").strip() or None,
        )
        await lists_service.confirm(
            session,
            ctx,
            principal=principal,
            list_id=list_id,
            responses_in_hand=body.responses_in_hand,
            attest_no_inquiries=body.attest_no_inquiries,
            late_reason=body.late_reason,
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{back}?{_refusal_query(exc)}#confirm")
    return _done_redirect(ctx, principal, back, "confirmed")


async def _list_file(
    request: Request, list_id: str, principal: Principal, session: AsyncSession, ctx: AppContext, how: str
) -> Response:
    try:
        daily = await _readable_list(session, principal, list_id)
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    content = lists_service.open_content(ctx, daily)
    lines = await list_lines(session, ctx, principal, daily, content)
    await lists_service.record_access(session, principal=principal, daily=daily, how=how)
    branch_name = next(
        (b.name for b in await directory.list_branches(session) if b.code == daily.branch_code),
        daily.branch_code,
    )
    view = list_file_view(ctx, daily, branch_name, lines)
    stem = f"{daily.kind}-list-{daily.branch_code}-{daily.business_date:%Y%m%d}-v{daily.version}"
    if how == "downloaded":
        return Response(
            render_csv(view),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"', **_NO_STORE},
        )
    return Response(
        render_pdf(view),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{stem}.pdf"', **_NO_STORE},
    )


@router.get("/lists/{list_id}/csv")
async def list_csv(
    request: Request, list_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    return await _list_file(request, list_id, principal, session, ctx, "downloaded")


@router.get("/lists/{list_id}/pdf")
async def list_pdf(
    request: Request, list_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    return await _list_file(request, list_id, principal, session, ctx, "printed")


# -- branch manager and HQ ---------------------------------------------------------------------------------


@router.get("/oversight")
async def oversight(request: Request, principal: PanelUser, session: DbSession, ctx: Context) -> HTMLResponse:
    try:
        escalations = await escalation_service.open_escalations(
            session, principal=principal, limit=OVERSIGHT_ROWS
        )
        handled = await escalation_service.recently_acknowledged(session, principal=principal)
        # The page shows the newest 200; more than that is said, with how many there are in all.
        open_total = (
            await escalation_service.count_open(session, principal=principal)
            if len(escalations) >= OVERSIGHT_ROWS
            else len(escalations)
        )
        # Each row offers the form only to someone whose acknowledgement the API would take.
        not_for_caller = await escalation_service.handling(
            session, principal=principal, escalations=escalations
        )
    except DomainError as exc:
        return await _error_page(request, session, ctx, principal, exc)
    overdue = (
        await _search_lists(session, ctx, principal, state="overdue") if may(principal, "lists.read") else []
    )
    hq_requests: list[HqRequest] = []
    if may(principal, "hq_request.read"):
        hq_requests, _ = await hq_service.list_requests(
            session, principal=principal, status="pending", limit=100, cursor=None
        )
    balance = None
    if may(principal, "hq_reconciliation.read"):
        balance, _signed = await hq_service.reconciliation(
            session, ctx=ctx, principal=principal, business_date=business_date_of(ctx.clock.now())
        )
    # Staff know an inquiry by its number and a list by its kind and day: the rows name them so.
    shown = [*escalations, *handled]
    inquiry_numbers = await inquiry_service.inquiry_numbers(
        session, (e.object_id for e in shown if e.object_type == "inquiry")
    )
    list_headings = await lists_service.list_headings(
        session, (e.object_id for e in shown if e.object_type == "daily_list")
    )
    people = [*(r.operator_id for r in hq_requests), *(e.acknowledged_by for e in handled)]
    return _render(
        request,
        "oversight.html",
        principal=principal,
        staff_names=await directory.staff_names(session, people),
        escalations=escalations,
        open_total=open_total,
        handled=handled,
        not_for_caller=not_for_caller,
        inquiry_numbers=inquiry_numbers,
        list_headings=list_headings,
        overdue=overdue,
        hq_requests=hq_requests,
        balance=balance,
    )


@router.post("/escalations/{escalation_id}/acknowledge")
async def acknowledge_escalation(
    request: Request, escalation_id: str, principal: PanelUser, session: DbSession, ctx: Context
) -> Response:
    form = await _form(request, ctx, principal)
    back = f"{PANEL_PATH}/oversight"
    try:
        body = _checked_form(AcknowledgeEscalationIn, note=form.get("note", ""))
        await escalation_service.acknowledge(
            session, ctx=ctx, principal=principal, escalation_id=escalation_id, note=body.note
        )
    except DomainError as exc:
        await _refused(request, session, exc)
        return _redirect(f"{back}?{_refusal_query(exc)}#escalations-title")
    return _done_redirect(ctx, principal, back, "acknowledged")


# -- mounting -----------------------------------------------------------------------------------------------


async def _panel_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PanelRedirect)
    response = _redirect(exc.location)
    if exc.end_session:
        clear_panel_cookie(response, request.app.state.ctx, SESSION_COOKIE)
    return response


async def _panel_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PanelRefusal)
    await record_refusal(request, exc.error)
    return _render(
        request,
        "error.html",
        principal=getattr(request.state, "principal", None),
        status_code=exc.error.status,
        message=error_message(_language(request), exc.error.code),
        code=exc.error.code,
    )


def install_panel(app: FastAPI) -> None:
    """Mount the panel at /panel (templates, static files, routes) and send / there."""
    here = Path(__file__).parent
    app.state.panel_templates = Environment(
        loader=FileSystemLoader(here / "templates"),
        # Everything a page shows is escaped: a subject's name is text, never markup (XSS).
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.add_exception_handler(PanelRedirect, _panel_redirect)
    app.add_exception_handler(PanelRefusal, _panel_refusal)
    app.mount(f"{PANEL_PATH}/static", StaticFiles(directory=here / "static"), name="panel-static")
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return _redirect(f"{PANEL_PATH}/")
