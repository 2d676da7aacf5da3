"""End-to-end panel tests: a real uvicorn server on a loopback port, driven by headless Chromium.

The server runs in a thread with its own event loop and the test's ManualClock, so a test moves time
(overdue lists, idle timeouts) by setting the clock. Everything that touches the database — seeding,
generating lists, reading the ledger — runs on the server's loop through ``live.run(...)``, so one
engine serves both. The browser is started once per test session (Playwright's Python package with
Debian's /usr/bin/chromium; no browser is ever downloaded) on pytest-asyncio's session loop: the async
API, because the sync one leaves an event loop running in the main thread for the rest of the session.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from app.center.simulator.population import Population
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring
from app.demo import DemoCredentials, seed_demo
from app.main import build_context, create_app

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"


class LiveServer:
    """The gateway served by uvicorn on 127.0.0.1:<free port>, sharing the test's clock."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(context=ctx, background_tasks=True), log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="panel-uvicorn", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))

    def start(self) -> None:
        self._thread.start()
        for _ in range(400):
            if self._server.started:
                return
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.025)
        raise RuntimeError("the panel server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.loop.close()
        self._sock.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coroutine`` on the server's loop (the loop that owns the database engine)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@pytest.fixture
def live(
    settings: Settings, clock: ManualClock, keyring: Keyring, center_population: Population
) -> Iterator[LiveServer]:
    ctx = build_context(settings, clock=clock, keyring=keyring, population=center_population)
    server = LiveServer(ctx)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def demo_logins(live: LiveServer) -> DemoCredentials:
    return live.run(seed_demo(live.ctx))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(
        locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        await context.close()


# Every visible form control with no <label> (by id or wrapping): a control a screen reader cannot name.
UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden' && el.checkVisibility() && el.labels.length === 0)
  .map(el => el.id || el.name || el.outerHTML.slice(0, 80))"""


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page whose final state is saved as a screenshot under test-artifacts/panel/ (also on failure).

    Each page the test loads is checked for form controls without a label; the test fails at its end
    if any page had one (keyboard and screen-reader use, issue 5).
    """
    tab = await browser_context.new_page()
    unlabelled: dict[str, list[str]] = {}
    checked: list[str] = []

    async def check_labels(_: Any) -> None:
        try:
            url = tab.url
            missing = await tab.evaluate(UNLABELLED_CONTROLS)
        except PlaywrightError:
            return  # the page navigated on before the check ran; its successor is checked instead
        checked.append(url)
        if missing:
            unlabelled[url] = missing

    tab.on("load", check_labels)
    try:
        yield tab
        await check_labels(None)
        assert checked, "no page was checked for labels"
        assert unlabelled == {}, f"form controls without a label: {unlabelled}"
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
        await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
