"""HQ-2 in the panel: with return option ``none`` and method B at the requesting branch, HQ's answer
waits on that branch's confirmer's dashboard — not on HQ's — and its release page asks for what that
branch's policy asks (the second factor included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from app.center.simulator.population import Population
from app.config import Settings
from app.demo import DemoCredentials
from tests.helpers import user
from tests.hq.test_return_none import bundled_policy, write_policy
from tests.panel.conftest import ARTIFACTS, LiveServer
from tests.panel.support import Terminal, draft_body, log_in, subject_of

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    document = bundled_policy()
    # Branch 002 gets no list back from HQ and has no method A: B at 002 covers HQ's answers.
    document["check_methods"]["branches"] = {"002": ["B", "C", "D"]}
    document["hq_return_option"]["branches"] = {"002": "none"}
    return settings.model_copy(update={"policy_file": write_policy(tmp_path / "policy.json", document)})


def answered_request(live: LiveServer, demo: DemoCredentials, population: Population) -> dict[str, str]:
    """op002 asks HQ; HQ runs the request; HQ's answer is in and held."""
    subject = subject_of(population, 4)
    requester = Terminal(live, demo, "op002")
    requested = requester.post("/hq-requests", draft_body(subject))
    assert requested.status_code == 201, requested.text
    requester.close()
    hq = Terminal(live, demo, "hqop")
    executed = hq.post("/inquiries", draft_body(subject, hq_request_id=requested.json()["id"]))
    assert executed.status_code == 201, executed.text
    inquiry = executed.json()
    for _ in range(100):
        if inquiry["status"] != "queued":
            break
        inquiry = hq.http.get(f"/inquiries/{inquiry['id']}", headers=hq.headers).json()
    hq.close()
    assert inquiry["status"] == "held"
    return {"id": inquiry["id"], "number": inquiry["number"]}


async def test_hqs_answer_waits_on_the_requesting_branchs_dashboard_and_is_released_there(
    page: Page,
    browser: Browser,
    live: LiveServer,
    demo_logins: DemoCredentials,
    center_population: Population,
) -> None:
    inquiry = answered_request(live, demo_logins, center_population)

    # HQ's confirmer may not release it, so it is not on HQ's list of work (at HQ's own terminal).
    at_hq = await browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    hq_page = await at_hq.new_page()
    await log_in(hq_page, live, demo_logins, "hqcf")
    await expect(hq_page.locator("#count-held")).to_have_text("0")
    await expect(hq_page.locator("#held")).not_to_contain_text(inquiry["number"])
    await at_hq.close()

    await log_in(page, live, demo_logins, "cf002")
    await expect(page.locator("#count-held")).to_have_text("1")
    await page.locator("#held").get_by_role("link", name=f"回答の保留を解除する {inquiry['number']}").click()
    # The branch's confirmer compares the answer with the branch's document: whom it is about is shown.
    asked_about = subject_of(center_population, 4)
    await expect(page.locator("#subject-kana")).to_have_text(asked_about["name_kana"])
    await expect(page.locator("#subject-birth")).to_contain_text(asked_about["birth_date"][:4])
    # The second factor is asked for where the releasing branch's policy says so, not HQ's.
    await expect(page.locator("#release-totp")).to_have_count(0)
    live.ctx.policy = live.ctx.policy.model_copy(update={"confirmer_totp_branches": ["002"]})
    await page.reload()
    await expect(page.locator("#release-totp")).to_be_visible()
    live.ctx.policy = live.ctx.policy.model_copy(update={"confirmer_totp_branches": ["000"]})
    await page.reload()
    await expect(page.locator("#release-totp")).to_have_count(0)
    await page.screenshot(path=str(ARTIFACTS / "release-hq-answer-at-branch.png"), full_page=True)

    await page.get_by_label("パスワード（再入力）").fill(user(demo_logins, "cf002")["password"])
    await page.get_by_label("一致（書類どおり）").check()
    await page.get_by_role("button", name="記録して保留を解除する").click()
    await expect(page.locator(".flash-ok")).to_have_text("照合結果を記録し、回答の保留を解除しました。")
    await expect(page.locator("#response-kana")).to_have_text(subject_of(center_population, 4)["name_kana"])
    await page.goto(f"{live.url}/panel/")
    await expect(page.locator("#count-held")).to_have_text("0")
