"""Logging in to the panel (AU-3, AU-4, AU-6, AU-7) in a real browser, and what protects the session."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from app.clock import ManualClock
from app.demo import DemoCredentials
from tests.helpers import user
from tests.panel.conftest import LiveServer
from tests.panel.support import ledger, log_in

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_login_shows_the_previous_login_and_the_failed_attempts_since(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, clock: ManualClock
) -> None:
    await log_in(page, live, demo_logins, "cf001")
    await expect(page.locator("#login-notice")).to_contain_text("初めてのログインです")
    await expect(page.locator("#header-user")).to_have_text("鈴木 一郎（cf001）")
    await expect(page.locator("#header-terminal")).to_have_text("T001-01")
    await page.get_by_role("button", name="ログアウト").click()
    await expect(page.locator("#login-reason")).to_contain_text("ログアウトしました")

    clock.advance(hours=2)
    # The terminal is remembered (its binding, not the user): the second login needs no terminal key.
    await expect(page.locator(".terminal-current")).to_contain_text("T001-01")
    await log_in(page, live, demo_logins, "cf001", password="not-the-password")
    await expect(page.locator("#login-error")).to_contain_text("利用者IDまたはパスワードが違います")
    await log_in(page, live, demo_logins, "cf001", password="still-not-the-password")

    clock.advance(minutes=5)
    await log_in(page, live, demo_logins, "cf001")
    notice = page.locator("#login-notice")
    await expect(notice).to_be_visible()
    await expect(page.locator("#previous-login-at")).to_have_text("2026年11月24日（火） 10:00")
    await expect(page.locator("#previous-login-terminal")).to_have_text("T001-01")
    await expect(page.locator("#previous-login-address")).to_have_text("127.0.0.1")
    await expect(page.locator("#failed-attempts")).to_have_text("2回")
    await expect(notice).to_have_class("login-notice has-failures")
    # Shown once, right after logging in; the next page view no longer carries it.
    again = await page.request.get(f"{live.url}/panel/")
    assert again.ok and "login-notice" not in await again.text()
    # A notice cookie made up by someone else is ignored, even one whose signature is not ASCII (the
    # octal escape reads as "é"; it was a 500).
    await page.context.add_cookies([{"name": "shokai_login_notice", "value": '"e30.\\351"', "url": live.url}])
    forged = await page.request.get(f"{live.url}/panel/")
    assert forged.ok and "login-notice" not in await forged.text()

    cookies = {c["name"]: c for c in await page.context.cookies()}
    session_cookie = cookies["shokai_panel"]
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    # No "remember me": the session cookie dies with the browser session (AU-6).
    assert session_cookie["expires"] == -1


async def test_expired_password_forces_a_change_explained_in_plain_japanese(
    page: Page, live: LiveServer, demo_logins: DemoCredentials, clock: ManualClock
) -> None:
    clock.advance(days=91)
    await log_in(page, live, demo_logins, "cf002")
    await expect(page).to_have_url(f"{live.url}/panel/password")
    await expect(page.locator("#password-required")).to_contain_text("有効期限が切れた")
    # Nothing else is reachable until the password is changed.
    await page.goto(f"{live.url}/panel/")
    await expect(page).to_have_url(f"{live.url}/panel/password")

    current = user(demo_logins, "cf002")["password"]
    await page.get_by_label("現在のパスワード").fill(current)
    await page.get_by_label("新しいパスワード", exact=True).fill("cf002cf002cf002")
    await page.get_by_label("新しいパスワード（確認）").fill("cf002cf002cf002")
    await page.get_by_role("button", name="パスワードを変更する").click()
    violations = page.locator("#password-violations")
    await expect(violations).to_contain_text("ユーザーIDを含むパスワードは使えません。")
    await expect(violations).to_contain_text("よく使われるパスワードや単語")

    await page.get_by_label("現在のパスワード").fill(current)
    await page.get_by_label("新しいパスワード", exact=True).fill("Kawa-semi-2026!x")
    await page.get_by_label("新しいパスワード（確認）").fill("Kawa-semi-2026!x")
    await page.get_by_role("button", name="パスワードを変更する").click()
    changed = re.compile(rf"^{re.escape(live.url)}/panel/\?done=password_changed&proof=")
    await expect(page).to_have_url(changed)
    await expect(page.locator(".flash-ok")).to_have_text("パスワードを変更しました。")
    await expect(page.locator("h1")).to_have_text("ダッシュボード")
    refused = ledger(live, "auth.password_change_refused")
    assert refused and "contains_user_id" in refused[-1]["details"]["violations"]
    assert all("cf002cf002" not in str(event) for event in refused)


async def test_pages_are_not_cached_have_a_strict_csp_and_a_form_without_its_token_is_refused(
    page: Page, live: LiveServer, demo_logins: DemoCredentials
) -> None:
    await log_in(page, live, demo_logins, "cf001")
    response = await page.goto(f"{live.url}/panel/")
    assert response is not None
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    # Every credential field of the login form is marked autocomplete="off".
    login_page = await (await page.request.get(f"{live.url}/panel/login?terminal=change")).text()
    for name in ("user_id", "password", "totp", "terminal_id", "terminal_key"):
        field = re.search(rf'<input id="{name}"[^>]*>', login_page)
        assert field is not None and 'autocomplete="off"' in field.group(0), name

    # The same logged-in browser posts the logout form without its CSRF token: refused, session alive.
    refused = await page.request.post(f"{live.url}/panel/logout", form={"nothing": "here"})
    assert refused.status == 403
    # A page, not problem JSON: the error page in the panel's language, with the stable code.
    assert refused.headers["content-type"].startswith("text/html")
    assert 'id="error-code">CSRF_TOKEN_INVALID<' in await refused.text()
    assert "画面を開き直してください" in await refused.text()
    await page.goto(f"{live.url}/panel/")
    await expect(page.locator("h1")).to_have_text("ダッシュボード")
    denied = ledger(live, "request.denied")
    assert any(event["details"]["code"] == "CSRF_TOKEN_INVALID" for event in denied)
    # / leads to the panel.
    root = await page.request.get(f"{live.url}/", max_redirects=0)
    assert root.status == 303 and root.headers["location"] == "/panel/"
    # Japanese first; English one click away, and the choice is kept.
    await page.get_by_role("link", name="Switch to English").click()
    await expect(page.locator("h1")).to_have_text("Dashboard")
    await page.goto(f"{live.url}/panel/password")
    await expect(page.locator("h1")).to_have_text("Change password")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
