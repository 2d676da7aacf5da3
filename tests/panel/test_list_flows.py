"""Methods C and D in the browser: checking and confirming subject, count, zero-day and overdue lists."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from playwright.async_api import Page, expect

from app.center.simulator.population import Population
from app.clock import ManualClock
from app.demo import DemoCredentials
from app.lists.models import DailyList
from tests.helpers import MY_NUMBER_GROUPED
from tests.panel.conftest import ARTIFACTS, LiveServer
from tests.panel.support import (
    Terminal,
    close_branch,
    generate_lists,
    ledger,
    list_state,
    log_in,
    subject_of,
    tab_to,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

FRIDAY = date(2026, 11, 13)
FRIDAY_MORNING = datetime(2026, 11, 13, 1, 0, tzinfo=UTC)  # 10:00 JST
MONDAY_MORNING = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)  # the next business day, 10:00 JST


def friday_with_two_inquiries(
    live: LiveServer, demo: DemoCredentials, population: Population, clock: ManualClock
) -> tuple[dict[str, DailyList], list[dict[str, object]]]:
    """Two inquiries sent on Friday by op001 (approved by cf001), the lists generated on Monday."""
    clock.set(FRIDAY_MORNING)
    terminal = Terminal(live, demo, "op001")
    sent = [terminal.send_with_confirmer(subject_of(population, index)) for index in (5, 6)]
    terminal.close()
    assert all(s["status"] == "held" for s in sent)
    clock.set(MONDAY_MORNING)
    lists = {daily.kind: daily for daily in generate_lists(live, FRIDAY)}
    return lists, sent


def open_link(kind: str, day: date) -> str:
    label = {"subject": "被照会者リスト", "count": "照会件数リスト"}[kind]
    return f"開く {label} 001 {day.isoformat()}"


async def test_subject_list_lines_are_checked_and_the_list_confirmed_with_files_logged(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, _sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    subject_list = lists["subject"]

    await log_in(page, live, demo_logins, "cf001b")
    await page.locator("#lists").get_by_role("link", name=open_link("subject", FRIDAY)).click()
    await expect(page.locator("#list-state")).to_contain_text("確認待ち")
    await expect(page.locator("#list-due")).to_have_text("2026年11月16日（月） 24:00")
    for index in (5, 6):
        name = subject_of(center_population, index)["name_kana"]
        await expect(page.locator("table.lines")).to_contain_text(name)

    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.locator("#error-code")).to_have_text("LINES_UNCHECKED")
    # PL-4: an Individual Number typed into a note is refused in plain Japanese and the line stays open.
    await page.locator("#note-1").fill(f"書類に個人番号 {MY_NUMBER_GROUPED} の記載あり")
    await page.get_by_role("button", name="No.1 を「不一致」として記録").click()
    await expect(page.locator("#error-code")).to_have_text("MY_NUMBER_FORBIDDEN")
    await expect(page.get_by_role("alert")).to_contain_text("個人番号（マイナンバー）は入力できません")
    await expect(page.locator("#line-1 .check-cell")).to_have_attribute("data-check", "none")
    await page.screenshot(path=str(ARTIFACTS / "list-note-with-my-number-refused.png"), full_page=True)
    assert [e["details"]["code"] for e in ledger(live, "request.refused")] == ["MY_NUMBER_FORBIDDEN"]
    await page.get_by_role("button", name="No.1 を「一致」として記録").click()
    await expect(page.locator("#line-1 .check-cell")).to_have_attribute("data-check", "matched")
    await expect(page.locator("#line-1 .check-cell")).to_contain_text("高橋 美咲（cf001b）")
    await expect(page.locator("#line-1")).to_contain_text("佐藤 花子（op001）")
    await page.get_by_role("button", name="No.2 を「一致」として記録").click()
    await expect(page.locator("#line-2 .check-cell")).to_have_attribute("data-check", "matched")
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.get_by_role("status")).to_have_text("リストを確認しました。")
    await expect(page.locator("#list-state")).to_have_attribute("data-state", "confirmed")
    await expect(page.locator("#confirmed-by")).to_contain_text("高橋 美咲（cf001b）")

    csv = await page.request.get(f"{live.url}/panel/lists/{subject_list.id}/csv")
    assert csv.ok and (await csv.body()).startswith(b"\xef\xbb\xbf")
    pdf = await page.request.get(f"{live.url}/panel/lists/{subject_list.id}/pdf")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    assert (await pdf.body()).startswith(b"%PDF")
    # DL-2, PR-1: every view, download and print is in the ledger under the confirmer's name.
    for action in ("daily_list.viewed", "daily_list.downloaded", "daily_list.printed"):
        events = ledger(live, action)
        assert any(e["actor_id"] == "cf001b" and e["object_id"] == subject_list.id for e in events), action
    confirmed = list_state(live, subject_list.id)
    assert confirmed.state == "confirmed" and confirmed.confirmed_by == "cf001b" and not confirmed.late


async def test_hq_confirmer_checks_and_confirms_a_closed_branchs_last_list(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    """DL-1: the closing day's list of a branch with no one left to confirm it is HQ's to reconcile."""
    clock.set(FRIDAY_MORNING)
    terminal = Terminal(live, demo_logins, "op002")
    terminal.send_with_confirmer(subject_of(center_population, 7), confirmer="cf002")
    terminal.close()
    clock.advance(hours=6)
    close_branch(live, demo_logins, clock, "002")
    clock.set(MONDAY_MORNING)
    subject_list = next(d for d in generate_lists(live, FRIDAY, "002") if d.kind == "subject")

    await log_in(page, live, demo_logins, "hqcf")
    await page.goto(f"{live.url}/panel/lists/{subject_list.id}")
    await expect(page.locator("#confirmed-from-hq")).to_contain_text("本部の確認者が照合し、確認します")
    await expect(page.locator("table.lines")).to_contain_text(subject_of(center_population, 7)["name_kana"])
    await page.screenshot(path=str(ARTIFACTS / "list-of-a-closed-branch.png"), full_page=True)
    await page.get_by_role("button", name="No.1 を「一致」として記録").click()
    await expect(page.locator("#line-1 .check-cell")).to_have_attribute("data-check", "matched")
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.get_by_role("status")).to_have_text("リストを確認しました。")
    confirmed = list_state(live, subject_list.id)
    assert (confirmed.state, confirmed.confirmed_by, confirmed.late) == ("confirmed", "hqcf", False)


async def test_a_link_cannot_make_a_list_page_claim_a_check_or_a_confirmation(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, _sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    subject_list = lists["subject"]
    await log_in(page, live, demo_logins, "cf001b")
    page_url = f"{live.url}/panel/lists/{subject_list.id}"

    # A bookmarked or pasted success URL: the clerk must not read "confirmed" above an open list.
    await page.goto(f"{page_url}?done=confirmed")
    await expect(page.locator("#list-state")).to_have_attribute("data-state", "pending")
    await expect(page.locator(".flash-ok")).to_have_count(0)

    await page.get_by_role("button", name="No.1 を「一致」として記録").click()
    await expect(page.get_by_role("status")).to_contain_text("No.1")
    checked_url = page.url
    # The proof of line 1's check says nothing of line 2, nor of a confirmation.
    await page.goto(checked_url.replace("line=1", "line=2"))
    await expect(page.locator(".flash-ok")).to_have_count(0)
    await page.goto(checked_url.replace("done=checked", "done=confirmed"))
    await expect(page.locator(".flash-ok")).to_have_count(0)
    await expect(page.locator("#line-2 .check-cell")).to_have_attribute("data-check", "none")
    await page.screenshot(path=str(ARTIFACTS / "list-success-link-not-trusted.png"), full_page=True)

    # Another session (the same clerk after logging in again) is not shown the earlier session's outcome.
    await page.goto(checked_url)
    await expect(page.get_by_role("status")).to_contain_text("No.1")
    await page.context.clear_cookies()
    await log_in(page, live, demo_logins, "cf001b")
    await page.goto(checked_url)
    await expect(page.locator(".flash-ok")).to_have_count(0)


async def test_a_line_found_not_matching_reaches_the_manager_who_is_led_to_that_line(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, _sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    await log_in(page, live, demo_logins, "cf001b")
    await page.locator("#lists").get_by_role("link", name=open_link("subject", FRIDAY)).click()
    await page.locator("#note-2").fill("同意書の取得日が照会日より後")
    await page.get_by_role("button", name="No.2 を「不一致」として記録").click()
    await expect(page.locator("#line-2 .check-cell")).to_have_attribute("data-check", "mismatch")
    await page.get_by_role("button", name="ログアウト").click()

    await log_in(page, live, demo_logins, "bm001")
    await page.get_by_role("link", name="管理者ビュー").click()
    row = page.locator("#escalations tr", has_text="リスト明細の不一致")
    await expect(row.locator(".escalation-note")).to_have_text("No.2 の明細")
    await row.get_by_role("link", name="被照会者リスト 2026年11月13日（金）").click()
    assert page.url.endswith(f"/panel/lists/{lists['subject'].id}#line-2")
    await expect(page.locator("#line-2 .check-cell")).to_have_attribute("data-check", "mismatch")
    await expect(page.locator("#line-2")).to_contain_text("同意書の取得日が照会日より後")


async def test_count_list_is_refused_until_the_responses_in_hand_match(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    lists, _sent = friday_with_two_inquiries(live, demo_logins, center_population, clock)
    count_list = lists["count"]

    await log_in(page, live, demo_logins, "cf001b")
    await page.locator("#lists").get_by_role("link", name=open_link("count", FRIDAY)).click()
    await expect(page.locator("#list-totals")).to_have_text("照会件数 2件 / 回答受領 2件")
    # A count list shows no names.
    assert subject_of(center_population, 5)["name_kana"] not in await page.content()
    for line in (1, 2):
        await page.get_by_role("button", name=f"No.{line} を「一致」として記録").click()
        await expect(page.locator(f"#line-{line} .check-cell")).to_have_attribute("data-check", "matched")

    await page.get_by_label("手元にある回答の件数").fill("1")
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.locator("#error-code")).to_have_text("COUNT_MISMATCH")
    await expect(page.locator(".flash-error")).to_contain_text("一致しません")
    assert list_state(live, count_list.id).state == "pending"

    await page.get_by_label("手元にある回答の件数").fill("2")
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.locator("#list-state")).to_have_attribute("data-state", "confirmed")
    assert list_state(live, count_list.id).responses_in_hand == 2


async def test_zero_day_list_is_attested_and_confirmed_with_the_keyboard_only(
    page: Page, live: LiveServer, demo_logins: DemoCredentials
) -> None:
    zero_day = date(2026, 11, 20)  # a Friday without inquiries; due Tuesday 24 (Monday 23 is a holiday)
    lists = {daily.kind: daily for daily in generate_lists(live, zero_day)}
    subject_list = lists["subject"]
    assert subject_list.no_inquiries

    # Log in: the user id field has the focus, Tab moves on, Enter submits.
    await page.goto(f"{live.url}/panel/login")
    terminal = next(t for t in demo_logins.terminals if t["branch_code"] == "001")
    password = next(u["password"] for u in demo_logins.users if u["id"] == "cf001")
    await page.keyboard.type("cf001")
    await page.keyboard.press("Tab")
    await page.keyboard.type(password)
    await page.keyboard.press("Tab")  # the one-time code: left empty, no second factor enrolled
    await page.keyboard.press("Tab")
    await page.keyboard.type(terminal["id"])
    await page.keyboard.press("Tab")
    await page.keyboard.type(terminal["key"])
    await page.keyboard.press("Enter")
    await expect(page.locator("h1")).to_have_text("ダッシュボード")

    await tab_to(page, f'#lists a[href="/panel/lists/{subject_list.id}"]')
    await page.keyboard.press("Enter")
    await expect(page.locator("#zero-day")).to_contain_text("照会がありませんでした")

    await tab_to(page, "#confirm-submit")
    await page.keyboard.press("Enter")
    await expect(page.locator("#error-code")).to_have_text("ATTESTATION_REQUIRED")

    await tab_to(page, "#attest_no_inquiries")
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator("#list-state")).to_have_attribute("data-state", "confirmed")
    confirmed = list_state(live, subject_list.id)
    assert confirmed.attested_no_inquiries and confirmed.confirmed_by == "cf001"


async def test_overdue_list_is_red_on_the_dashboard_and_needs_a_late_reason(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))  # Tuesday 10:00 JST; Friday's lists were due Monday
    lists = {daily.kind: daily for daily in generate_lists(live, FRIDAY)}
    count_list = lists["count"]

    await log_in(page, live, demo_logins, "cf001")
    overdue = page.locator("#overdue")
    await expect(overdue.locator("tr.row-overdue")).to_have_count(2)
    await expect(overdue).to_contain_text("2026年11月16日（月） 24:00")
    await expect(page.locator("#count-overdue")).to_have_text("2")
    day = page.locator("#day-2026-11-13 li[data-branch='001']")
    await expect(day).to_have_attribute("data-state", "overdue")
    await expect(day).to_contain_text("照会なし")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-with-overdue-lists.png"), full_page=True)

    await overdue.get_by_role("link", name=open_link("count", FRIDAY)).click()
    await expect(page.locator("#list-due")).to_have_class("deadline overdue")
    await page.get_by_label("この日に照会がなかったことを確認しました").check()
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.locator("#error-code")).to_have_text("LATE_REASON_REQUIRED")

    await page.get_by_label("この日に照会がなかったことを確認しました").check()
    await page.get_by_label("確認が遅れた理由").fill("確認者が研修で不在のため")
    await page.get_by_role("button", name="リストを確認する").click()
    await expect(page.locator("#late-mark")).to_contain_text("確認者が研修で不在のため")
    confirmed = list_state(live, count_list.id)
    assert confirmed.late and confirmed.late_reason == "確認者が研修で不在のため"
