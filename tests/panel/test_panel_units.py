"""The panel's parts that need no browser: the month calendar, the templates' CSP hygiene, the cookies."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from fastapi import Response

from app.config import Settings
from app.context import AppContext
from app.escalation.models import balance_note
from app.lists.calendar import BusinessCalendar, Closure
from app.panel.i18n import CATALOGUES, translator
from app.panel.security import SESSION_COOKIE, loopback_demo_settings, set_panel_cookie
from app.panel.views import CalendarDay, ListOnDay, escalation_line, escalation_note, month_grid

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "panel" / "templates"


def _cells(weeks: list[list[CalendarDay | None]]) -> dict[date, CalendarDay]:
    return {cell.day: cell for week in weeks for cell in week if cell is not None}


def _states(cell: CalendarDay) -> dict[str, tuple[str, bool]]:
    return {entry.branch_code: (entry.state, entry.zero) for entry in cell.entries}


def test_month_grid_shows_each_branch_days_list_state() -> None:
    today = date(2026, 11, 18)  # a Wednesday; November 2026 starts on a Sunday
    lists = [
        ListOnDay("001", date(2026, 11, 2), "confirmed", False, "a"),
        ListOnDay("001", date(2026, 11, 2), "confirmed", False, "b"),
        # One kind confirmed, the other still open: the day shows the more urgent state.
        ListOnDay("001", date(2026, 11, 4), "confirmed", False, "c"),
        ListOnDay("001", date(2026, 11, 4), "pending", False, "d"),
        ListOnDay("001", date(2026, 11, 5), "overdue", False, "e"),
        ListOnDay("002", date(2026, 11, 5), "confirmed", False, "f"),
        ListOnDay("001", date(2026, 11, 6), "pending", True, "g"),
        ListOnDay("001", date(2026, 11, 6), "pending", True, "h"),
    ]
    weeks = month_grid(
        year=2026,
        month=11,
        today=today,
        branches=["002", "001"],
        lists=lists,
        missing={("001", date(2026, 11, 9)), ("002", date(2026, 11, 2))},
        business_calendar=BusinessCalendar(),
    )
    # Monday-first weeks: the 1st (a Sunday) sits in the last column, the days before it are blank.
    assert weeks[0][:6] == [None] * 6 and weeks[0][6] is not None and weeks[0][6].day == date(2026, 11, 1)
    cells = _cells(weeks)
    assert len(cells) == 30

    assert _states(cells[date(2026, 11, 2)]) == {"001": ("confirmed", False), "002": ("missing", False)}
    assert cells[date(2026, 11, 2)].entries[0].branch_code == "001"  # branches in code order
    assert cells[date(2026, 11, 2)].entries[0].list_id == "a"
    assert _states(cells[date(2026, 11, 4)])["001"] == ("pending", False)
    assert _states(cells[date(2026, 11, 5)]) == {"001": ("overdue", False), "002": ("confirmed", False)}
    assert _states(cells[date(2026, 11, 6)])["001"] == ("pending", True)  # a zero-inquiry day
    assert _states(cells[date(2026, 11, 9)])["001"] == ("missing", False)
    assert cells[date(2026, 11, 9)].entries[0].list_id is None  # nothing to open
    # A past business day the gap detector did not report, without lists, shows nothing to act on.
    assert "002" not in _states(cells[date(2026, 11, 9)])
    # Weekends and holidays are closed days with their reason and no badge.
    for closed, reason in ((date(2026, 11, 7), "土曜日"), (date(2026, 11, 3), "文化の日")):
        assert cells[closed].closed_reason == reason and cells[closed].entries == []
    # Today and later business days are upcoming for every branch; today is marked.
    assert cells[today].is_today and not cells[date(2026, 11, 17)].is_today
    assert _states(cells[today]) == {"001": ("upcoming", False), "002": ("upcoming", False)}
    assert _states(cells[date(2026, 11, 30)]) == {"001": ("upcoming", False), "002": ("upcoming", False)}
    assert cells[date(2026, 11, 23)].closed_reason is not None  # 勤労感謝の日
    assert cells[date(2026, 11, 23)].entries == []


def test_a_branchs_own_closure_shows_as_closed_and_a_badge_opens_a_list_in_its_state() -> None:
    # Branch 001 alone is closed on Wednesday 16 December (a renovation): the bank is open, 002 is due.
    calendar = BusinessCalendar([Closure(date(2026, 12, 16), "店舗改装", "001")])
    lists = [
        # The 7th: the subject list confirmed first, the count list still pending.
        ListOnDay("001", date(2026, 12, 7), "confirmed", False, "subject-7"),
        ListOnDay("001", date(2026, 12, 7), "pending", False, "count-7"),
    ]
    cells = _cells(
        month_grid(
            year=2026,
            month=12,
            today=date(2026, 12, 8),
            branches=["001", "002"],
            lists=lists,
            missing=set(),
            business_calendar=calendar,
        )
    )
    renovation = cells[date(2026, 12, 16)]
    assert renovation.closed_reason is None  # not a closed day of the bank
    assert _states(renovation) == {"001": ("closed", False), "002": ("upcoming", False)}
    assert renovation.entries[0].closed_reason == "店舗改装"
    # The badge says pending: it opens the pending list, not the confirmed one beside it.
    seventh = cells[date(2026, 12, 7)]
    assert _states(seventh)["001"] == ("pending", False)
    assert seventh.entries[0].list_id == "count-7"


# -- CSP without inline script: nothing in a template may need 'unsafe-inline' --------------------------

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"javascript:", re.IGNORECASE)


def test_templates_have_no_inline_script_handlers_styles_or_javascript_urls() -> None:
    templates = sorted(TEMPLATES.glob("*.html"))
    assert len(templates) >= 10
    found = []
    for path in templates:
        text = path.read_text(encoding="utf-8")
        for name, pattern in (
            ("inline <script>", INLINE_SCRIPT),
            ("on*= handler", EVENT_HANDLER),
            ("style= attribute", STYLE_ATTRIBUTE),
            ("<style> element", INLINE_STYLE),
            ("javascript: URL", JAVASCRIPT_URL),
        ):
            found += [f"{path.name}: {name}: {m.group(0)[:60]}" for m in pattern.finditer(text)]
    assert found == []
    # The scanner itself sees what it must refuse.
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/panel/static/panel.js" defer></script>')
    assert EVENT_HANDLER.search('<button onclick="go()">')
    assert STYLE_ATTRIBUTE.search('<p style="color:red">')
    assert JAVASCRIPT_URL.search('<a href="javascript:void(0)">')


# -- the session cookie -----------------------------------------------------------------------------------


def _cookie_header(cookie_secure: bool) -> str:
    settings = Settings(cookie_secure=cookie_secure)
    ctx = cast(AppContext, SimpleNamespace(settings=settings))
    response = Response()
    set_panel_cookie(response, ctx, SESSION_COOKIE, "token-value")
    return response.headers["set-cookie"]


def test_the_session_cookie_is_secure_httponly_and_strict_unless_cookie_secure_is_off() -> None:
    cookie = _cookie_header(True)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/panel" in cookie.lower()
    # No expiry: it dies with the browser session (AU-6, no automatic login).
    assert "max-age" not in attributes and "expires" not in attributes
    assert "secure" not in {part.strip().lower() for part in _cookie_header(False).split(";")}


def test_only_the_loopback_demo_turns_the_secure_flag_off() -> None:
    assert Settings().cookie_secure is True  # the default everywhere
    secure = Settings(cookie_secure=True)
    for host in ("127.0.0.1", "localhost", "::1"):
        assert loopback_demo_settings(secure, host=host, environ={}).cookie_secure is False
    for host in ("0.0.0.0", "10.1.2.3", "gateway.bank.example", "::"):
        assert loopback_demo_settings(secure, host=host, environ={}).cookie_secure is True
    # An operator who sets SHOKAI_COOKIE_SECURE decides, even on loopback (e.g. behind a TLS proxy).
    kept: Any = loopback_demo_settings(secure, host="127.0.0.1", environ={"SHOKAI_COOKIE_SECURE": "true"})
    assert kept.cookie_secure is True


def test_every_escalation_kind_and_the_hq_badge_have_words_in_both_languages() -> None:
    kinds = ("document_mismatch", "list_overdue", "list_line_mismatch", "list_line_document_missing")
    for language in ("ja", "en"):
        for kind in (*kinds, "hq_count_mismatch"):
            assert f"escalation.{kind}" in CATALOGUES[language]
        assert "object.hq_reconciliation" in CATALOGUES[language]
        assert "oversight.not_balanced" in CATALOGUES[language]
    # The badge is words, not the raw code.
    assert ">HQ_COUNT_MISMATCH</span>" not in (TEMPLATES / "oversight.html").read_text()


def test_an_escalations_note_reads_in_the_staffs_language_or_not_at_all() -> None:
    """Notes are written for the API; on the oversight page a confirmer's own words stay as written, the
    center's code and a list line are said in words, and a note that only repeats the row is left out."""
    ja, en = translator("ja"), translator("en")
    memo = "申込書の生年月日と回答が異なる"
    assert escalation_note("document_mismatch", memo, ja) == memo
    assert escalation_note("list_line_mismatch", "line 3", ja) == "No.3 の明細"
    assert escalation_note("list_line_document_missing", "line 12", en) == "Line 12"
    center_code = escalation_note("center_refused_correction", "E_NOT_FOUND", ja)
    assert center_code == "センターの結果コード: E_NOT_FOUND"
    assert escalation_note("list_overdue", "subject list 2026-11-13", ja) is None
    assert escalation_note("list_line_mismatch", "something else", ja) is None
    assert escalation_note("document_mismatch", None, ja) is None
    # The HQ day's figures as they were when the difference was raised.
    figures = balance_note(hq_executed=2, branch_requests=1, own_initiative=0)
    assert (
        escalation_note("hq_count_mismatch", figures, ja)
        == "発生時点：本部の照会実行 2 件、支店からの依頼の実行 1 件、本部独自の照会 0 件"
    )
    assert (
        escalation_note("hq_count_mismatch", figures, en)
        == "When raised: executed by HQ 2, branch requests executed 1, HQ's own inquiries 0"
    )
    assert escalation_note("hq_count_mismatch", None, ja) is None
    # The row's link leads to that line of the list.
    assert escalation_line("list_line_mismatch", "line 3") == "3"
    assert escalation_line("list_overdue", "line 3") is None
