"""Helpers for the panel's browser tests: a terminal client on the real API, logins, the ledger."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import httpx
from playwright.async_api import Page
from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR
from app.audit.models import AuditEvent
from app.center.simulator.population import Population
from app.clock import ManualClock
from app.demo import DemoCredentials
from app.lists import service as lists_service
from app.lists.models import DailyList
from tests.governance.support import privileged_headers
from tests.helpers import home_terminal, user
from tests.panel.conftest import LiveServer


def subject_of(population: Population, index: int = 0, **overrides: Any) -> dict[str, Any]:
    """A synthetic person the simulated center knows (nobody real), as an inquiry's subject."""
    people = [p for p in population if p.has_transactions]
    person = people[index]
    subject = {
        "name_kana": person.name_kana,
        "name_kanji": person.name_kanji,
        "birth_date": person.birth_date.isoformat(),
        "address": person.latest_address.address,
    }
    subject.update(overrides)
    return subject


def draft_body(subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "new_credit",
        "customer_status": "new",
        "subject": subject,
        "consent_document": {
            "type": "loan_application",
            "reference": "LA-2026-000123",
            "obtained_on": "2026-11-10",
        },
    }
    body.update(overrides)
    return body


class Terminal:
    """A branch terminal's client speaking the API over real HTTP to the live server."""

    def __init__(self, live: LiveServer, demo: DemoCredentials, user_id: str) -> None:
        self.demo = demo
        self.http = httpx.Client(base_url=f"{live.url}/api/v1", timeout=30)
        term = home_terminal(demo, user_id)
        assert term is not None
        login = self.http.post(
            "/auth/login",
            json={"user_id": user_id, "password": user(demo, user_id)["password"]},
            headers={"X-Terminal-Id": term["id"], "X-Terminal-Key": term["key"]},
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        self.headers = {"Authorization": f"Bearer {token}", "X-Terminal-Id": term["id"]}

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.headers)

    def create_draft(self, subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        response = self.post("/inquiries", draft_body(subject, **overrides))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def send_with_confirmer(self, subject: dict[str, Any], confirmer: str = "cf001") -> dict[str, Any]:
        """Enter and send at once with the confirmer's own credentials (method A1); waits for the answer."""
        approval = {
            "method": "confirmer_credentials",
            "confirmer_user_id": confirmer,
            "confirmer_password": user(self.demo, confirmer)["password"],
        }
        response = self.post("/inquiries", draft_body(subject, approval=approval))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def close(self) -> None:
        self.http.close()


async def log_in(
    page: Page, live: LiveServer, demo: DemoCredentials, user_id: str, *, password: str | None = None
) -> None:
    """Log in through the login form from the user's branch terminal (typed the first time)."""
    await page.goto(f"{live.url}/panel/login")
    await page.get_by_label("利用者ID").fill(user_id)
    await page.get_by_label("パスワード", exact=True).fill(password or user(demo, user_id)["password"])
    term = home_terminal(demo, user_id)
    if term is not None and await page.locator("#terminal_id").count():
        await page.get_by_label("端末ID").fill(term["id"])
        await page.get_by_label("端末キー").fill(term["key"])
    await page.get_by_role("button", name="ログイン").click()
    await page.wait_for_load_state()


async def tab_to(page: Page, selector: str, *, limit: int = 150) -> None:
    """Press Tab until ``selector`` has the focus: proof that the keyboard alone reaches it."""
    target = page.locator(selector)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms (every form of one session carries the same token)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form"
    return found.group(1)


def generate_lists(live: LiveServer, day: date, branch_code: str = "001") -> list[DailyList]:
    results = live.run(lists_service.generate(live.ctx, day=day, actor=SYSTEM_ACTOR, branch_code=branch_code))
    return [result.daily for result in results]


def close_branch(live: LiveServer, demo: DemoCredentials, clock: ManualClock, branch_code: str) -> None:
    """The access administrator closes the branch through the API, in a privileged session (AC-5)."""

    async def close() -> None:
        async with httpx.AsyncClient(base_url=f"{live.url}/api/v1", timeout=30) as client:
            admin = await privileged_headers(client, demo, clock, "accadmin")
            closed = await client.post(
                f"/branches/{branch_code}/deactivate", json={"reason": "統廃合"}, headers=admin
            )
            assert closed.status_code == 204, closed.text

    live.run(close())


def ledger(live: LiveServer, action: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        async with live.ctx.db.read_session() as session:
            query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            return [
                {
                    "actor_id": e.actor_id,
                    "object_id": e.object_id,
                    "outcome": e.outcome,
                    "details": json.loads(e.details),
                }
                for e in (await session.scalars(query)).all()
            ]

    return live.run(read())


def list_state(live: LiveServer, list_id: str) -> DailyList:
    async def read() -> DailyList:
        async with live.ctx.db.read_session() as session:
            daily = await session.get(DailyList, list_id)
            assert daily is not None
            return daily

    return live.run(read())
