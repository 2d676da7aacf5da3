"""Methods A and B in the browser: approving a draft for a terminal, releasing a response, idle lock."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from app.audit.ledger import Actor
from app.authz import directory
from app.authz.principal import Principal
from app.center.simulator.population import Population
from app.clock import ManualClock
from app.demo import DemoCredentials
from app.panel import router as panel_router
from app.retention import service as retention
from tests.helpers import user
from tests.panel.conftest import ARTIFACTS, LiveServer
from tests.panel.support import Terminal, draft_body, ledger, log_in, subject_of

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_confirmer_issues_an_approval_number_that_the_terminal_submits(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    subject = subject_of(center_population, 0)
    draft = terminal.create_draft(subject)
    assert draft["status"] == "awaiting_approval"

    await log_in(page, live, demo_logins, "cf001")
    drafts = page.locator("#drafts")
    await expect(drafts).to_contain_text(draft["number"])
    # Who entered it, by name as colleagues know them, with the id the ledger uses.
    await expect(drafts.locator("tr", has_text=draft["number"])).to_contain_text("佐藤 花子（op001）")
    await drafts.get_by_role("link", name=f"確認する {draft['number']}").click()
    await expect(page.locator("#operator")).to_have_text("佐藤 花子（op001）")
    # Laid out to compare with the paper: purpose, customer status, subject, consent document.
    await expect(page.locator("#purpose")).to_contain_text("新規与信判断")
    await expect(page.locator("#customer-status")).to_have_text("新規")
    await expect(page.locator("#subject-kana")).to_have_text(subject["name_kana"])
    await expect(page.locator("#document-type")).to_have_text("借入申込書")
    await expect(page.locator("#document-reference")).to_have_text("LA-2026-000123")
    await page.get_by_role("button", name="承認番号を発行する").click()

    number = (await page.locator("#approval-number").inner_text()).strip()
    assert len(number) >= 6
    await expect(page.locator("#approval-expires")).to_contain_text("2026年11月24日")

    submitted = terminal.post(
        f"/inquiries/{draft['id']}/submit",
        {"approval": {"method": "approval_number", "approval_number": number}},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] in ("queued", "held")
    assert submitted.json()["approval"]["confirmer_id"] == "cf001"
    # The page view showed a subject: it is in the ledger by pseudonym, never by name.
    views = ledger(live, "panel.inquiry_viewed")
    assert [v["object_id"] for v in views] == [draft["id"]]
    assert views[0]["actor_id"] == "cf001"
    assert subject["name_kana"] not in str(views) and subject["name_kanji"] not in str(views)
    terminal.close()


async def test_a_refused_draft_cannot_be_submitted_and_a_script_in_a_name_is_only_text(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    hostile = "山田<script>alert(1)</script>太郎"
    draft = terminal.create_draft(subject_of(center_population, 1, name_kanji=hostile))
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await log_in(page, live, demo_logins, "cf001b")
    await page.goto(f"{live.url}/panel/inquiries/{draft['id']}")
    await expect(page.locator("#subject-kanji")).to_have_text(hostile)
    assert await page.locator("#subject-kanji script").count() == 0
    assert dialogs == []

    await page.get_by_role("button", name="承認番号を発行する").click()
    number = (await page.locator("#approval-number").inner_text()).strip()
    # On second thought the confirmer refuses: the number already issued dies with the refusal.
    await page.goto(f"{live.url}/panel/inquiries/{draft['id']}")
    await page.get_by_label("承認しない理由").select_option("document_mismatch")
    await page.get_by_role("button", name="差し戻す").click()
    await expect(page.locator(".flash-ok")).to_contain_text("差し戻しました")
    await expect(page.locator(".badge-flag")).to_have_text("差戻し")
    refusals = ledger(live, "inquiry.approval_refused")
    assert [e["details"] for e in refusals] == [{"reason": "document_mismatch"}]
    submitted = terminal.post(
        f"/inquiries/{draft['id']}/submit",
        {"approval": {"method": "approval_number", "approval_number": number}},
    )
    assert submitted.status_code == 409 and submitted.json()["code"] == "INVALID_STATE", submitted.text
    # The refusal stands until the operator corrects the draft: the page offers no approval, and another
    # confirmer's credentials for the very draft refused do not overrule it.
    await expect(page.locator("#approval-refused")).to_contain_text("訂正すると")
    assert await page.locator("#issue-number").count() == 0
    overruled = terminal.post(
        f"/inquiries/{draft['id']}/submit",
        {
            "approval": {
                "method": "confirmer_credentials",
                "confirmer_user_id": "cf001",
                "confirmer_password": user(demo_logins, "cf001")["password"],
            }
        },
    )
    assert overruled.status_code == 409 and overruled.json()["code"] == "INVALID_STATE", overruled.text
    assert ledger(live, "inquiry.approved") == []
    assert dialogs == []
    terminal.close()


async def test_confirmer_releases_a_response_after_reauthentication_and_reads_it(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    sent = terminal.send_with_confirmer(subject_of(center_population, 2))
    assert sent["status"] == "held"

    await log_in(page, live, demo_logins, "cf001b")
    await page.locator("#held").get_by_role("link", name=f"回答の保留を解除する {sent['number']}").click()
    await page.get_by_label("パスワード（再入力）").fill("wrong-password-123")
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator("#error-code")).to_have_text("REAUTH_FAILED")

    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf001b")["password"])
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_label("メモ（任意。不一致の場合は状況を記入）").fill("運転免許証の原本で本人確認済み")
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator(".flash-ok")).to_have_text("照合結果を記録し、回答の保留を解除しました。")
    # The note written with a matching check is kept with the release and shown with the response.
    await expect(page.locator("#release-note")).to_have_text("運転免許証の原本で本人確認済み")
    await expect(page.locator("h2", has_text="借入")).to_be_visible()
    await expect(page.locator("h2", has_text="延滞")).to_be_visible()
    await expect(page.locator("h2", has_text="官報情報")).to_be_visible()
    await expect(page.locator("h2", has_text="取引停止処分")).to_be_visible()
    await expect(page.locator("#response-kana")).to_have_text(subject_of(center_population, 2)["name_kana"])
    # Received at 10:00 on 24 November; the demo policy's use period is 30 days from receipt.
    assert live.ctx.policy.response_use_days == 30
    await expect(page.locator("#use-period")).to_contain_text("利用期限は 2026年12月24日（木） 10:00 まで")
    # Read again, with a link that tries to make the page claim a release: it shows no such message.
    response = await page.goto(f"{live.url}/panel/inquiries/{sent['id']}/response?done=released")
    assert response is not None and response.headers["cache-control"] == "no-store"
    await expect(page.locator("#response-kana")).to_be_visible()
    await expect(page.locator(".flash-ok")).to_have_count(0)
    reads = ledger(live, "inquiry.response_read")
    assert [r["actor_id"] for r in reads] == ["cf001b", "cf001b"]
    terminal.close()


async def test_a_mismatch_says_what_happens_next_and_reaches_the_branch_manager(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    sent = terminal.send_with_confirmer(subject_of(center_population, 3), confirmer="cf001b")

    async def also_a_manager() -> None:
        async with live.ctx.db.session() as session:
            await directory.grant_role(
                session,
                ctx=live.ctx,
                actor=Actor(id="test"),
                user_id="cf001",
                role="branch_manager",
                branch_code="001",
            )
            await session.commit()

    live.run(also_a_manager())  # cf001 also manages the branch: the page must not offer them the form
    await log_in(page, live, demo_logins, "cf001")
    await page.goto(f"{live.url}/panel/inquiries/{sent['id']}/release")
    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf001")["password"])
    await page.get_by_label("不一致（書類と合わない）").check()
    await page.get_by_label("メモ（任意。不一致の場合は状況を記入）").fill("申込書の生年月日と回答が異なる")
    await page.get_by_role("button", name="記録して保留を解除する").click()
    next_steps = page.locator("#mismatch-next")
    await expect(next_steps).to_contain_text("個人信用情報管理者と本部コンプライアンス部門に通知")
    await expect(page.locator(".flash-ok")).to_have_count(0)  # a mismatch is not announced as a success
    assert terminal.http.get(f"/inquiries/{sent['id']}/response", headers=terminal.headers).status_code == 403
    # As a manager, cf001 sees the escalation they raised, but it is for someone else to close.
    await page.get_by_role("link", name="管理者ビュー").click()
    raised = page.locator("#escalations tr", has_text=f"照会 {sent['number']}")
    not_yours = raised.locator(".escalation-not-yours")
    await expect(not_yours).to_have_text("ご自身が関係するため、他の方が対応します")
    await expect(raised.get_by_role("button", name="対応済みにする")).to_have_count(0)

    await page.get_by_role("button", name="ログアウト").click()
    await log_in(page, live, demo_logins, "bm001")
    # The dashboard counts what waits for the manager and leads to it.
    await expect(page.locator("#count-escalations")).to_have_text("1")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-manager-escalations.png"), full_page=True)
    await page.get_by_role("link", name="1 未対応のエスカレーション").click()
    escalations = page.locator("#escalations")
    await expect(escalations).to_contain_text("回答の照合不一致")
    await expect(escalations).to_contain_text("001")
    # The row names the inquiry by the number staff know it by, and leads to it.
    await escalations.get_by_role("link", name=f"照会 {sent['number']}").click()
    await expect(page.locator("h1")).to_contain_text(sent["number"])

    # Back on the page, the manager closes it with what was done; the confirmer's memo is beside it.
    await page.go_back()
    row = page.locator("#escalations tr", has_text=f"照会 {sent['number']}")
    await expect(row).to_contain_text("申込書の生年月日と回答が異なる")
    await page.screenshot(path=str(ARTIFACTS / "oversight-escalation-to-handle.png"), full_page=True)
    handled = row.get_by_label("行った対応")
    await handled.fill("   ")  # blanks are not what was done: refused, and the row stays open
    await row.get_by_role("button", name="対応済みにする").click()
    await expect(page.locator("#error-code")).to_have_text("VALIDATION_ERROR")
    await expect(row).to_be_visible()
    assert ledger(live, "escalation.acknowledged") == []
    await row.get_by_label("行った対応").fill("申込者に本人確認書類の再提出を依頼し、回答は利用しない")
    await row.get_by_role("button", name="対応済みにする").click()
    await expect(page.locator(".flash-ok")).to_have_text("エスカレーションを対応済みにしました。")
    await expect(page.locator("#escalations tr", has_text=f"照会 {sent['number']}")).to_have_count(0)
    # It moves to the history below: when, who (by name) and what was done, still leading to the inquiry.
    handled = page.locator("#handled-escalations tr", has_text=f"照会 {sent['number']}")
    await expect(handled).to_contain_text("田中 誠（bm001）")
    await expect(handled.locator(".escalation-handling")).to_have_text(
        "申込者に本人確認書類の再提出を依頼し、回答は利用しない"
    )
    await expect(handled).to_contain_text("回答の照合不一致")
    [acknowledged] = ledger(live, "escalation.acknowledged")
    assert acknowledged["actor_id"] == "bm001"
    assert acknowledged["details"]["object_id"] == sent["id"]
    # What was done stays with the escalation (read through the API), not in the ledger's details.
    assert "申込者" not in str(acknowledged["details"])
    await page.get_by_role("link", name="ダッシュボード").click()
    await expect(page.locator("#count-escalations")).to_have_text("0")
    manager = Terminal(live, demo_logins, "bm001")
    closed = manager.http.get("/escalations", params={"state": "acknowledged"}, headers=manager.headers)
    assert closed.status_code == 200, closed.text
    [record] = [e for e in closed.json()["items"] if e["object_id"] == sent["id"]]
    assert record["acknowledged_by"] == "bm001"
    assert record["acknowledgement_note"] == "申込者に本人確認書類の再提出を依頼し、回答は利用しない"
    manager.close()
    terminal.close()


async def test_idle_timeout_locks_the_screen_and_the_page_with_personal_data_is_gone(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    subject = subject_of(center_population, 4)
    draft = terminal.create_draft(subject)
    await page.clock.install()
    await log_in(page, live, demo_logins, "cf001")
    await page.goto(f"{live.url}/panel/inquiries/{draft['id']}")
    await expect(page.locator("#subject-kana")).to_have_text(subject["name_kana"])
    await expect(page.locator("#idle-countdown")).to_have_text("10:00")

    # The browser's countdown reaches zero: the content is removed, only the re-login remains.
    await page.clock.fast_forward("10:01")
    await expect(page.locator("#lock-screen")).to_be_visible()
    assert subject["name_kana"] not in await page.content()
    assert await page.locator("#main").inner_text() == ""

    # The server's idle timeout ends the session too: reloading shows the login page, not the subject.
    clock.advance(minutes=10, seconds=1)
    await page.goto(f"{live.url}/panel/inquiries/{draft['id']}")
    await expect(page.locator("#login-reason")).to_contain_text("セッションが終了しました")
    assert subject["name_kana"] not in await page.content()
    ended = ledger(live, "auth.session_ended")
    assert ended and ended[-1]["details"] == {"reason": "idle_timeout"}
    terminal.close()


async def test_hq_confirmer_sees_pending_branch_requests_and_the_daily_hq_balance(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, center_population: Population
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    subject = subject_of(center_population, 7)
    requested = terminal.post(
        "/hq-requests",
        {k: v for k, v in draft_body(subject).items() if k != "approval"},
    )
    assert requested.status_code == 201, requested.text

    await log_in(page, live, demo_logins, "hqcf")
    await page.get_by_role("link", name="管理者ビュー").click()
    requests = page.locator("#hq-requests")
    await expect(requests).to_contain_text("001")
    await expect(requests).to_contain_text("被照会者リスト")
    # The request's subject is not on this overview.
    assert subject["name_kana"] not in await page.content()
    balance = page.locator("#hq-balance")
    await expect(balance).to_contain_text("一致")
    terminal.close()


async def test_a_response_destroyed_at_the_end_of_its_use_period_is_said_so_on_its_pages(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RT-1: after the purge the inquiry page says the response is gone, instead of offering to release
    it, and the confirmer's table of responses to release holds only what can still be released, even
    when destroyed ones (the oldest) outnumber its rows; the response page says so in Japanese."""
    monkeypatch.setattr(panel_router, "DASHBOARD_ROWS", 1)
    terminal = Terminal(live, demo_logins, "op001")
    sent, other = (terminal.send_with_confirmer(subject_of(center_population, n)) for n in (5, 6))
    assert sent["status"] == other["status"] == "held"
    clock.advance(days=live.ctx.policy.response_use_days + 1)
    terminal = Terminal(live, demo_logins, "op001")
    recent = terminal.send_with_confirmer(subject_of(center_population, 7))
    terminal.close()

    def officer(user_id: str) -> Principal:
        now = clock.now()
        return Principal(
            kind="user",
            id=user_id,
            name=user_id,
            session_id=f"test-{user_id}",
            session_expires_at=now,
            idle_expires_at=None,
            role_branches={"security_officer": frozenset()},
        )

    async def purge() -> None:
        async with live.ctx.db.session() as session:
            requested = await retention.request_purge(
                session, ctx=live.ctx, principal=officer("secoff"), reason="定例消去"
            )
        async with live.ctx.db.session() as session:
            await retention.approve_purge(
                session, ctx=live.ctx, principal=officer("secoff2"), purge_id=requested.id
            )

    await log_in(page, live, demo_logins, "cf001b")
    await expect(page.locator("#held")).to_contain_text("001-")
    live.run(purge())
    # Nothing is left to release: only the recent response waits for the confirmer.
    await page.goto(f"{live.url}/panel/")
    await expect(page.get_by_role("link", name=f"回答の保留を解除する {sent['number']}")).to_have_count(0)
    await expect(page.get_by_role("link", name=f"回答の保留を解除する {recent['number']}")).to_have_count(1)
    await page.goto(f"{live.url}/panel/inquiries/{sent['id']}")
    await expect(page.locator("#response-destroyed")).to_contain_text("利用期間の経過により消去されました")
    await expect(page.get_by_role("link", name="回答の保留を解除する")).to_have_count(0)
    # Its state reads as destroyed, not as a response still held for release.
    await expect(page.locator(".meta .badge").first).to_have_text("回答消去済")
    await page.screenshot(path=str(ARTIFACTS / "inquiry-response-destroyed.png"), full_page=True)
    # The release page, reached by an old link, asks for no password it would then refuse.
    await page.goto(f"{live.url}/panel/inquiries/{sent['id']}/release")
    await expect(page.locator("#response-destroyed")).to_contain_text("利用期間の経過により消去されました")
    await expect(page.locator("#release-password")).to_have_count(0)
    await page.screenshot(path=str(ARTIFACTS / "release-response-destroyed.png"), full_page=True)
    await page.goto(f"{live.url}/panel/inquiries/{sent['id']}/response")
    await expect(page.locator("#error-code")).to_have_text("RESPONSE_DESTROYED")
    await expect(page.locator(".lead")).to_contain_text("利用期間の経過により消去されたため")


async def test_the_pages_offer_to_approve_release_or_read_only_to_whoever_the_service_lets(
    page: Page,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal(live, demo_logins, "op001")
    held = terminal.send_with_confirmer(subject_of(center_population, 3), confirmer="cf001")
    assert held["status"] == "held"
    release_page = f"{live.url}/panel/inquiries/{held['id']}/release"
    inquiry_page = f"{live.url}/panel/inquiries/{held['id']}"

    async def as_user(user_id: str) -> None:
        await page.context.clear_cookies()
        await log_in(page, live, demo_logins, user_id)

    # Method B, SD-1: the operator is never handed a form to release their own answer, nor the auditor.
    for user_id in ("op001", "auditor"):
        await as_user(user_id)
        await page.goto(release_page)
        await expect(page.locator("#release-password")).to_have_count(0)
        await expect(page.locator("#release-not-yours")).to_be_visible()
        await page.goto(inquiry_page)
        await expect(page.get_by_role("link", name="回答の保留を解除する")).to_have_count(0)
    await page.screenshot(path=str(ARTIFACTS / "release-not-offered-to-auditor.png"), full_page=True)

    # HQ's confirmer reads the whole bank but releases and approves only HQ's work (HQ-4): branch 001's
    # held answer and draft are not on its dashboard, and HQ's own draft is not cut off behind them.
    monkeypatch.setattr(panel_router, "DASHBOARD_ROWS", 1)
    branch_draft = terminal.create_draft(subject_of(center_population, 4))
    clock.advance(minutes=1)
    hq_terminal = Terminal(live, demo_logins, "hqop")
    hq_draft = hq_terminal.create_draft(subject_of(center_population, 8))
    hq_terminal.close()
    await as_user("hqcf")
    shown = await page.locator("#drafts a, #held a").evaluate_all("links => links.map(a => a.pathname)")
    assert f"/panel/inquiries/{hq_draft['id']}" in shown
    assert not [path for path in shown if held["id"] in path or branch_draft["id"] in path]
    await page.goto(inquiry_page)
    await expect(page.get_by_role("link", name="回答の保留を解除する")).to_have_count(0)
    await page.goto(f"{live.url}/panel/inquiries/{branch_draft['id']}")
    await expect(page.locator("#issue-number")).to_have_count(0)

    await as_user("cf001b")
    await page.goto(release_page)
    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf001b")["password"])
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator(".flash-ok")).to_have_text("照合結果を記録し、回答の保留を解除しました。")

    # After release: the releaser and the operator read it; the confirmer who only approved it does not.
    for user_id, offered in (("cf001", 0), ("op001", 1), ("cf001b", 1)):
        await as_user(user_id)
        await page.goto(inquiry_page)
        await expect(page.get_by_role("link", name="回答を表示する")).to_have_count(offered)
    terminal.close()
