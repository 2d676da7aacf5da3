"""What guards the panel's forms: CSRF on each, the API's permissions and limits, TOTP at release; the
month calendar and the HQ views; the main flows with the keyboard only."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from app.audit.ledger import SYSTEM_ACTOR
from app.center.simulator.population import Population
from app.clock import ManualClock
from app.crypto.sealed_text import open_text
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.governance.totp import code_at
from app.hq.models import HqRequest
from app.lists import service as lists_service
from app.lists.models import DailyListLine
from app.panel import router as panel_router
from tests.governance.support import secret_bytes
from tests.helpers import MY_NUMBER_GROUPED, as_recorded, home_terminal, user
from tests.panel.conftest import ARTIFACTS, LiveServer
from tests.panel.support import (
    Terminal,
    csrf_of,
    draft_body,
    generate_lists,
    ledger,
    list_state,
    log_in,
    subject_of,
    tab_to,
)
from tests.panel.test_list_flows import FRIDAY, friday_with_two_inquiries

pytestmark = pytest.mark.asyncio(loop_scope="session")

ZERO_THURSDAY, ZERO_FRIDAY = date(2026, 11, 19), date(2026, 11, 20)  # no inquiries on either day


def _is_csrf_page(status: int, content_type: str, html: str) -> bool:
    return (
        status == 403
        and content_type.startswith("text/html")
        and 'id="error-code">CSRF_TOKEN_INVALID<' in html
        and "<h1>" in html
    )


async def test_every_panel_form_posted_without_its_csrf_token_is_refused_with_an_error_page(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    draft = terminal.create_draft(subject_of(center_population, 0))
    held = terminal.send_with_confirmer(subject_of(center_population, 1))
    daily = generate_lists(live, ZERO_FRIDAY)[0]

    # The login form: the browser holds the login nonce, but the form lacks the token bound to it.
    await page.goto(f"{live.url}/panel/login")
    login = await page.request.post(
        f"{live.url}/panel/login",
        form={"user_id": "cf001", "password": user(demo_logins, "cf001")["password"]},
    )
    assert _is_csrf_page(login.status, login.headers["content-type"], await login.text())
    assert "shokai_panel" not in {c["name"] for c in await page.context.cookies()}

    await log_in(page, live, demo_logins, "cf001")
    password = user(demo_logins, "cf001")["password"]
    forms = {
        "/panel/password": {
            "current_password": password,
            "new_password": "x" * 16,
            "repeat_password": "x" * 16,
        },
        f"/panel/inquiries/{draft['id']}/approval-number": {},
        f"/panel/inquiries/{draft['id']}/refuse": {"reason": "document_mismatch"},
        f"/panel/inquiries/{held['id']}/release": {"password": password, "document_check": "match"},
        f"/panel/lists/{daily.id}/lines/1/check": {"result": "matched", "note": "ok"},
        f"/panel/lists/{daily.id}/confirm": {"attest_no_inquiries": "yes"},
        "/panel/logout": {},
    }
    for path, fields in forms.items():
        refused = await page.request.post(f"{live.url}{path}", form={**fields, "csrf_token": ""})
        assert _is_csrf_page(refused.status, refused.headers["content-type"], await refused.text()), path
        # A token of the right shape from elsewhere is refused the same way.
        forged = await page.request.post(f"{live.url}{path}", form={**fields, "csrf_token": "A" * 43})
        assert forged.status == 403, path
        # And one that is not even ASCII (was a 500: the comparison refused the text).
        foreign = await page.request.post(f"{live.url}{path}", form={**fields, "csrf_token": "é" * 43})
        assert _is_csrf_page(foreign.status, foreign.headers["content-type"], await foreign.text()), path
    # Nothing happened: the draft and the held response are untouched, the list open, the session alive.
    assert terminal.http.get(f"/inquiries/{draft['id']}", headers=terminal.headers).json()["status"] == (
        "awaiting_approval"
    )
    assert terminal.http.get(f"/inquiries/{held['id']}", headers=terminal.headers).json()["status"] == "held"
    assert ledger(live, "inquiry.approval_refused") == []
    assert list_state(live, daily.id).state == "pending"
    denied = [e for e in ledger(live, "request.denied") if e["details"]["code"] == "CSRF_TOKEN_INVALID"]
    assert {e["object_id"] for e in denied} >= {"/panel/login", *forms}

    # The error page speaks the chosen language.
    await page.goto(f"{live.url}/panel/")
    await page.get_by_role("link", name="Switch to English").click()
    english = await page.request.post(f"{live.url}/panel/logout", form={"csrf_token": ""})
    assert english.status == 403 and "Open the page again" in await english.text()
    await page.goto(f"{live.url}/panel/")
    await expect(page.locator("h1")).to_have_text("Dashboard")
    # The same in the browser: a form whose token was lost leads to the refusal page, not to JSON.
    await page.locator(".logout-form input[name=csrf_token]").evaluate("element => { element.value = '' }")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("h1")).to_have_text("The action could not be completed")
    await expect(page.locator("#error-code")).to_have_text("CSRF_TOKEN_INVALID")
    await expect(page.locator("#header-user")).to_contain_text("cf001")  # still logged in
    terminal.close()


def _route_template(path: str) -> str:
    """The panel route a path of the test matched, as the ledger names it in place of the path."""
    parts = path.split("/")  # ["", "panel", "inquiries"|"lists", id, ...]
    parts[3] = "{inquiry_id}" if parts[2] == "inquiries" else "{list_id}"
    if len(parts) > 5 and parts[4] == "lines":
        parts[5] = "{line_no}"
    return "/".join(parts)


async def test_a_role_without_the_permission_is_refused_in_the_panel_as_in_the_api(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    terminal = Terminal(live, demo_logins, "op001")
    draft = terminal.create_draft(subject_of(center_population, 0))
    # The branch manager reads the branch's inquiries and lists but neither approves nor releases.
    await log_in(page, live, demo_logins, "bm001")
    csrf = csrf_of(await page.content())
    attempts = {
        f"/panel/inquiries/{draft['id']}/approval-number": {},
        f"/panel/inquiries/{draft['id']}/refuse": {"reason": "document_mismatch"},
        f"/panel/inquiries/{sent[0]['id']}/release": {
            "password": user(demo_logins, "bm001")["password"],
            "document_check": "match",
        },
        f"/panel/lists/{lists['subject'].id}/lines/1/check": {"result": "matched"},
        f"/panel/lists/{lists['count'].id}/confirm": {"responses_in_hand": "2"},
    }
    for path, fields in attempts.items():
        refused = await page.request.post(f"{live.url}{path}", form={**fields, "csrf_token": csrf})
        # The same code the API gives for the same role (require(...) there, the service here and there).
        assert 'id="error-code">FORBIDDEN<' in await refused.text(), path
    assert terminal.http.get(f"/inquiries/{draft['id']}", headers=terminal.headers).json()["status"] == (
        "awaiting_approval"
    )
    assert (
        terminal.http.get(f"/inquiries/{sent[0]['id']}", headers=terminal.headers).json()["status"] == "held"
    )
    assert list_state(live, lists["count"].id).state == "pending"
    denied = [e for e in ledger(live, "request.denied") if e["actor_id"] == "bm001"]
    # Each path as it came, or its route's template where a random id happens to read as an Individual
    # Number (digits across a UUID's hyphen, a valid check digit one time in ten): the ledger never keeps one.
    assert {e["object_id"] for e in denied} == {as_recorded(path, _route_template(path)) for path in attempts}
    assert {e["details"]["code"] for e in denied} == {"FORBIDDEN"}
    await page.goto(f"{live.url}/panel/inquiries/{draft['id']}?error=FORBIDDEN")
    # The page offers the branch manager no approval form at all.
    assert await page.get_by_role("button", name="承認番号を発行する").count() == 0
    terminal.close()


async def test_a_line_note_is_kept_and_text_over_the_apis_limit_is_refused_on_the_page(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, _sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    subject_list = lists["subject"]
    await log_in(page, live, demo_logins, "cf001b")
    await page.goto(f"{live.url}/panel/lists/{subject_list.id}")
    await page.get_by_label("No.1 のメモ（任意）").fill("申込書原本と照合済み")
    await page.get_by_role("button", name="No.1 を「一致」として記録").click()
    await expect(page.locator("#line-1 .check-cell")).to_have_attribute("data-check", "matched")
    # The note is shown back with the check, to the confirmer and to whoever reads the list later.
    await expect(page.locator("#note-text-1")).to_have_text("申込書原本と照合済み")

    async def line_note(line_no: int) -> str | None:
        async with live.ctx.db.read_session() as session:
            line = await session.scalar(
                select(DailyListLine).where(
                    DailyListLine.list_id == subject_list.id, DailyListLine.line_no == line_no
                )
            )
            assert line is not None
            return open_text(live.ctx.keyring, line, "note")

    assert live.run(line_note(1)) == "申込書原本と照合済み"

    # 401 characters: the API refuses them (max_length=400), so the panel does too, and says why.
    csrf = csrf_of(await page.content())
    too_long = "長" * 401
    checked = await page.request.post(
        f"{live.url}/panel/lists/{subject_list.id}/lines/2/check",
        form={"csrf_token": csrf, "result": "mismatch", "note": too_long},
    )
    assert 'id="error-code">VALIDATION_ERROR<' in await checked.text()
    assert "No.2 のメモは400文字以内" in await checked.text()  # which of the page's notes to shorten
    assert live.run(line_note(2)) is None
    confirmed = await page.request.post(
        f"{live.url}/panel/lists/{subject_list.id}/confirm",
        form={"csrf_token": csrf, "late_reason": too_long},
    )
    assert 'id="error-code">VALIDATION_ERROR<' in await confirmed.text()
    assert list_state(live, subject_list.id).state == "pending"
    # Over the limit and holding an Individual Number: what the confirmer must hear is the number (PL-4).
    with_a_number = await page.request.post(
        f"{live.url}/panel/lists/{subject_list.id}/lines/2/check",
        form={"csrf_token": csrf, "result": "mismatch", "note": f"番号 {MY_NUMBER_GROUPED} " + too_long},
    )
    assert 'id="error-code">MY_NUMBER_FORBIDDEN<' in await with_a_number.text()
    assert MY_NUMBER_GROUPED not in await with_a_number.text()
    assert live.run(line_note(2)) is None
    # A line number no column holds names no line; a count in superscript or circled digits is no number.
    # (Each was a 500.) Full-width digits, as a Japanese keyboard types them, are a number.
    for line_no in (2**63, 10**29):
        beyond = await page.request.post(
            f"{live.url}/panel/lists/{subject_list.id}/lines/{line_no}/check",
            form={"csrf_token": csrf, "result": "matched"},
        )
        assert 'id="error-code">NOT_FOUND<' in await beyond.text(), line_no
    for typed in ("²", "①", "²²"):
        odd = await page.request.post(
            f"{live.url}/panel/lists/{subject_list.id}/confirm",
            form={"csrf_token": csrf, "responses_in_hand": typed},
        )
        assert 'id="error-code">VALIDATION_ERROR<' in await odd.text(), typed
    full_width = await page.request.post(
        f"{live.url}/panel/lists/{subject_list.id}/confirm",
        form={"csrf_token": csrf, "responses_in_hand": "２"},
    )
    # Read as 2: the count is taken, and the confirmation is refused only because lines are unchecked.
    assert 'id="error-code">LINES_UNCHECKED<' in await full_width.text()
    assert list_state(live, subject_list.id).state == "pending"
    # Exactly 400 is accepted, kept whole (never silently cut).
    await page.goto(f"{live.url}/panel/lists/{subject_list.id}")
    await page.get_by_label("No.2 のメモ（任意）").fill("記" * 400)
    await page.get_by_role("button", name="No.2 を「一致」として記録").click()
    await expect(page.locator("#line-2 .check-cell")).to_have_attribute("data-check", "matched")
    assert live.run(line_note(2)) == "記" * 400
    # A long note is folded to its start and opens whole.
    await expect(page.locator("#line-2 .check-cell summary")).to_have_text("記" * 40 + "…")
    await page.screenshot(path=str(ARTIFACTS / "list-line-notes.png"), full_page=True)
    await page.locator("#line-2 .check-cell summary").click()
    await expect(page.locator("#note-text-2")).to_have_text("記" * 400)
    # What the refusal looks like on the page, for the screenshot.
    await page.goto(f"{live.url}/panel/lists/{subject_list.id}?error=VALIDATION_ERROR&hint=too_long")
    await expect(page.locator("#error-hint")).to_contain_text("400文字以内")


async def test_the_month_calendar_shows_confirmed_overdue_and_missing_days_from_every_list(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two lists a page: the month's four lists of branch 001 take several pages, all of them read.
    monkeypatch.setattr(panel_router, "_MONTH_PAGE", 2)
    generate_lists(live, ZERO_THURSDAY)
    friday = generate_lists(live, ZERO_FRIDAY)
    await log_in(page, live, demo_logins, "cf001")
    for daily in friday:
        await page.goto(f"{live.url}/panel/lists/{daily.id}")
        await page.get_by_label("この日に照会がなかったことを確認しました").check()
        await page.get_by_role("button", name="リストを確認する").click()
        await expect(page.locator("#list-state")).to_have_attribute("data-state", "confirmed")

    await page.goto(f"{live.url}/panel/")
    calendar = page
    badge = calendar.locator("#day-2026-11-20 li[data-branch='001']")
    await expect(badge).to_have_attribute("data-state", "confirmed")
    await expect(badge).to_contain_text("照会なし")
    await expect(calendar.locator("#day-2026-11-19 li[data-branch='001']")).to_have_attribute(
        "data-state", "overdue"
    )
    # A past business day without any list is missing (DL-1); today is still upcoming; Sunday is closed.
    await expect(calendar.locator("#day-2026-11-18 li[data-branch='001']")).to_have_attribute(
        "data-state", "missing"
    )
    await expect(calendar.locator("#day-2026-11-24 li[data-branch='001']")).to_have_attribute(
        "data-state", "upcoming"
    )
    # The gaps are said in words with their number, not only drawn; the month shown is this month.
    gaps = await calendar.locator("#calendar li[data-state='missing']").count()
    assert gaps > 0
    missing_note = calendar.locator("#missing-lists")
    await expect(missing_note).to_contain_text(f"作成されていない営業日が店番ごとに延べ{gaps}日")
    await expect(calendar.locator("#this-month")).to_have_count(0)
    await expect(calendar.locator("#day-2026-11-22")).to_have_class("day closed")
    await expect(calendar.locator("#day-2026-11-22 li")).to_have_count(0)
    # A month typed into the URL that is not one shows this month (superscript digits were a 500).
    for typed in ("2026-²", "²⁰²⁶-¹¹", "1999-01", "2026-13", "2100-01"):
        odd = await page.request.get(f"{live.url}/panel/", params={"month": typed})
        assert odd.status == 200, typed
        assert 'id="day-2026-11-20"' in await odd.text(), typed
        assert 'id="month-unreadable"' in await odd.text(), typed  # and the page says so
    await page.goto(f"{live.url}/panel/?month=2026-13")
    await expect(page.locator("#month-unreadable")).to_contain_text("今月を表示しています")
    await page.locator("#calendar").screenshot(path=str(ARTIFACTS / "calendar-month-unreadable.png"))
    # At the ends of the business dates' range there is no link past them (it led back to this month).
    await page.goto(f"{live.url}/panel/?month=2000-01")
    await expect(page.locator("#month-unreadable")).to_have_count(0)
    await expect(page.locator(".month-nav a:not(#this-month)")).to_have_count(1)
    await expect(page.locator(".month-nav a:not(#this-month)")).to_have_attribute(
        "href", "/panel/?month=2000-02#calendar"
    )
    await page.goto(f"{live.url}/panel/?month=2099-12")
    await expect(page.locator(".month-nav a:not(#this-month)")).to_have_attribute(
        "href", "/panel/?month=2099-11#calendar"
    )
    # ... and one link straight back to this month, and no gap said for a month still to come.
    await expect(page.locator("#this-month")).to_have_attribute("href", "/panel/?month=2026-11#calendar")
    await expect(page.locator("#missing-lists")).to_have_count(0)


async def test_hq_sees_overdue_lists_of_every_branch_and_an_unbalanced_day(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))  # Tuesday 10:00 JST; Friday's lists were due Monday
    generate_lists(live, FRIDAY, "001")
    generate_lists(live, FRIDAY, "002")
    terminal = Terminal(live, demo_logins, "op001")
    requested = terminal.post(
        "/hq-requests", {k: v for k, v in draft_body(subject_of(center_population, 7)).items()}
    )
    assert requested.status_code == 201, requested.text
    terminal.close()

    async def executed_without_an_inquiry() -> None:
        # A request marked executed with no HQ inquiry behind it (a hand edit): HQ's day cannot balance.
        async with live.ctx.db.session() as session:
            await session.execute(
                update(HqRequest)
                .where(HqRequest.id == requested.json()["id"])
                .values(status="executed", executed_business_date=date(2026, 11, 17))
            )
            await session.commit()

    live.run(executed_without_an_inquiry())

    await log_in(page, live, demo_logins, "hqcf")
    await page.get_by_role("link", name="管理者ビュー").click()
    overdue = page.locator("#oversight-overdue")
    await expect(overdue.locator("tr.row-overdue")).to_have_count(4)
    for code in ("001", "002"):
        await expect(overdue.locator("tr", has_text=code)).to_have_count(2)
    await expect(page.locator("#hq-not-balanced")).to_have_text("不一致")
    await expect(page.locator("#hq-mismatch-help")).to_contain_text("締めの承認はできません")
    # Where the executed requests came from, said in words (it read "001: 1").
    await expect(page.locator("#hq-balance-by-branch")).to_have_text("店番別の依頼実行件数： 001 1件")
    # The critical alert raised on seeing the difference is an escalation, in words.
    await page.reload()
    escalations = page.locator("#escalations")
    await expect(escalations).to_contain_text("本部日次照合の件数不一致")
    await expect(escalations).to_contain_text("本部日次照合 2026年11月17日（火）")
    # With the figures it was raised on, in words.
    await expect(escalations).to_contain_text(
        "発生時点：本部の照会実行 0 件、支店からの依頼の実行 1 件、本部独自の照会 0 件"
    )
    assert "hq_count_mismatch" not in await page.content() and "branch_requests" not in await page.content()
    assert "hq_reconciliation" not in await escalations.inner_text()
    # An overdue list's escalation names the list by its kind and day, and leads to it.
    live.run(lists_service.escalate_overdue(live.ctx, actor=SYSTEM_ACTOR))
    await page.reload()
    overdue_escalations = escalations.locator("tr", has_text="リスト確認の期限超過")
    await expect(overdue_escalations).to_have_count(4)
    # The sweep's note is machine text for the API ("subject list 2026-11-13"): the row says it already.
    await expect(overdue_escalations.locator(".escalation-note")).to_have_count(0)
    assert "subject list" not in await escalations.inner_text()
    await expect(
        overdue_escalations.get_by_role("link", name="被照会者リスト 2026年11月13日（金）")
    ).to_have_count(2)
    await expect(
        overdue_escalations.get_by_role("link", name="照会件数リスト 2026年11月13日（金）")
    ).to_have_count(2)
    await page.get_by_role("link", name="Switch to English").click()
    await expect(page.locator("#hq-not-balanced")).to_have_text("Not balanced")
    await expect(page.locator("#hq-balance-by-branch")).to_have_text(
        "Branch requests executed, by branch: 001: 1"
    )
    await expect(page.locator("#escalations")).to_contain_text("Daily HQ balance does not match")
    await expect(page.locator("#escalations").get_by_role("button", name="Mark as handled")).to_have_count(5)
    await expect(page.locator("#header-user")).to_have_text("加藤 直子 (hqcf)")  # English punctuation
    await page.screenshot(path=str(ARTIFACTS / "oversight-english.png"), full_page=True)
    await page.get_by_role("link", name="日本語に切り替え").click()


async def test_release_asks_for_the_second_factor_where_the_branch_policy_says_so(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    sent = terminal.send_with_confirmer(subject_of(center_population, 2))
    assert sent["status"] == "held"
    terminal.close()
    # cf001b enrols a second factor; branch 001 then asks its confirmers for it (AU-8).
    confirmer = Terminal(live, demo_logins, "cf001b")
    started = confirmer.http.post("/me/totp", headers=confirmer.headers)
    assert started.status_code == 201, started.text
    secret = secret_bytes(started.json()["secret"])
    enrolled = confirmer.post("/me/totp/confirm", {"code": code_at(secret, clock.now())})
    assert enrolled.status_code == 204, enrolled.text
    confirmer.close()
    live.ctx.policy = live.ctx.policy.model_copy(update={"confirmer_totp_branches": ["001"]})
    clock.advance(seconds=30)

    await page.goto(f"{live.url}/panel/login")
    await page.get_by_label("利用者ID").fill("cf001b")
    await page.get_by_label("パスワード", exact=True).fill(user(demo_logins, "cf001b")["password"])
    await page.locator("#totp").fill(code_at(secret, clock.now()))
    term = home_terminal(demo_logins, "cf001b")
    assert term is not None
    await page.get_by_label("端末ID").fill(term["id"])
    await page.get_by_label("端末キー").fill(term["key"])
    await page.get_by_role("button", name="ログイン").click()
    await expect(page.locator("h1")).to_have_text("ダッシュボード")
    clock.advance(seconds=30)

    await page.goto(f"{live.url}/panel/inquiries/{sent['id']}/release")
    code_field = page.locator("#release-totp")
    await expect(code_field).to_be_visible()
    # Without the code (the browser's "required" removed, as a hand-made post would): refused.
    await code_field.evaluate("element => element.removeAttribute('required')")
    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf001b")["password"])
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator("#error-code")).to_have_text("REAUTH_FAILED")
    refusals = ledger(live, "inquiry.release_refused")
    assert [e["details"] for e in refusals] == [{"code": "REAUTH_FAILED", "reason": "totp"}]

    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf001b")["password"])
    await page.locator("#release-totp").fill(code_at(secret, clock.now()))
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator(".flash-ok")).to_have_text("照合結果を記録し、回答の保留を解除しました。")
    assert [e["actor_id"] for e in ledger(live, "inquiry.released")] == ["cf001b"]


async def test_approve_and_release_work_with_the_keyboard_only(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    draft = terminal.create_draft(subject_of(center_population, 3))
    held = terminal.send_with_confirmer(subject_of(center_population, 4), confirmer="cf001b")
    await log_in(page, live, demo_logins, "cf001")

    # Approve: from the dashboard's list of drafts to the number, with Tab and Enter only.
    await tab_to(page, f'#drafts a[href="/panel/inquiries/{draft["id"]}"]')
    await page.keyboard.press("Enter")
    await expect(page.locator("#subject-kana")).to_be_visible()
    await tab_to(page, "#issue-number")
    await page.keyboard.press("Enter")
    await expect(page.locator("#approval-number")).to_be_visible()
    number = (await page.locator("#approval-number").inner_text()).strip()
    submitted = terminal.post(
        f"/inquiries/{draft['id']}/submit",
        {"approval": {"method": "approval_number", "approval_number": number}},
    )
    assert submitted.status_code == 200, submitted.text

    # Release: password, the document check (arrow keys move between the radio buttons), submit.
    await page.goto(f"{live.url}/panel/")
    await tab_to(page, f'#held a[href="/panel/inquiries/{held["id"]}/release"]')
    await page.keyboard.press("Enter")
    await tab_to(page, "#release-password")
    await page.keyboard.type(user(demo_logins, "cf001")["password"])
    await tab_to(page, "#check-match")
    await page.keyboard.press("Space")
    await tab_to(page, "#release-submit")
    await page.keyboard.press("Enter")
    await expect(page.locator(".flash-ok")).to_have_text("照合結果を記録し、回答の保留を解除しました。")
    assert [e["actor_id"] for e in ledger(live, "inquiry.released")] == ["cf001"]
    await page.screenshot(path=str(ARTIFACTS / "response-after-keyboard-release.png"), full_page=True)
    terminal.close()


async def test_a_dashboard_table_that_holds_more_than_it_shows_says_so_on_its_tile_and_under_it(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two rows a table: three drafts, a minute apart, are one more than the dashboard shows.
    monkeypatch.setattr(panel_router, "DASHBOARD_ROWS", 2)
    terminal = Terminal(live, demo_logins, "op001")
    drafts = []
    for n in (0, 1, 2):
        drafts.append(terminal.create_draft(subject_of(center_population, n)))
        clock.advance(minutes=1)
    terminal.close()

    await log_in(page, live, demo_logins, "cf001")
    await expect(page.locator("#count-drafts")).to_have_text("2+")
    table = page.locator("#drafts tbody tr")
    await expect(table).to_have_count(2)
    # The oldest are shown; the newest waits its turn, and the page says the table is cut.
    await expect(page.locator("#drafts")).to_contain_text(drafts[0]["number"])
    await expect(page.locator("#drafts")).not_to_contain_text(drafts[2]["number"])
    await expect(page.locator("#more-drafts")).to_contain_text("古い順に2件を表示しています")
    # A table that shows everything it holds says nothing more.
    await expect(page.locator("#count-held")).to_have_text("0")
    await expect(page.locator("#more-held")).to_have_count(0)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-more-than-shown.png"), full_page=True)
    await page.get_by_role("link", name="Switch to English").click()
    await expect(page.locator("#more-drafts")).to_contain_text("Showing the oldest 2.")


async def test_every_page_says_when_the_center_cannot_be_reached_and_stops_once_it_is_back(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, clock: ManualClock
) -> None:
    """ER-3 for the staff: with the link down their inquiries stay queued; the panel says so, on every
    page, until a call gets through again."""
    await log_in(page, live, demo_logins, "op001")
    banner = page.locator("#center-link-down")
    assert await banner.count() == 0  # the link is up: no notice

    link = live.ctx.center
    threshold = live.ctx.settings.center_breaker_threshold

    async def center_fails() -> None:
        for _ in range(threshold):
            link.breaker.record_failure(link.breaker.before_call())

    live.run(center_fails())
    for path in ("/panel/password", "/panel/"):
        await page.goto(f"{live.url}{path}")
        await expect(banner).to_contain_text("信用情報センターに接続できません")
        await expect(banner).to_contain_text("接続が回復すると自動的に送信されます")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-center-link-down.png"), full_page=True)

    async def center_answers() -> None:
        clock.advance(seconds=live.ctx.settings.center_breaker_cooldown_seconds)
        link.breaker.before_call()
        link.breaker.record_success()

    live.run(center_answers())
    await page.goto(f"{live.url}/panel/")
    assert await banner.count() == 0


async def test_more_open_escalations_than_the_page_shows_are_counted_and_said(
    page: Page, live: LiveServer, demo_logins: DemoCredentials
) -> None:
    """A backlog (weeks of overdue lists after an outage) is not silently cut at the page's 200 rows."""
    backlog = panel_router.OVERSIGHT_ROWS + 5

    async def raise_backlog() -> None:
        async with live.ctx.db.session() as session:
            session.add_all(
                Escalation(
                    id=str(uuid.uuid4()),
                    kind="list_overdue",
                    branch_code="001",
                    object_type="daily_list",
                    object_id=str(uuid.uuid4()),
                    recipients=["branch_manager", "hq"],
                    created_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC) - timedelta(minutes=n),
                    note=None,
                )
                for n in range(backlog)
            )
            await session.commit()

    live.run(raise_backlog())
    await log_in(page, live, demo_logins, "bm001")
    await expect(page.locator("#count-escalations")).to_have_text(str(backlog))
    await page.get_by_role("link", name=f"{backlog} 未対応のエスカレーション").click()
    await expect(page.locator("#escalations tbody tr")).to_have_count(panel_router.OVERSIGHT_ROWS)
    await expect(page.locator("#escalations-more")).to_contain_text(
        f"未対応の全{backlog}件のうち、新しい{panel_router.OVERSIGHT_ROWS}件を表示しています"
    )
    await page.screenshot(path=str(ARTIFACTS / "oversight-more-than-shown.png"))
