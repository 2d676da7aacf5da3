"""`shokai reconcile center` (RC-1) and reconciliation over the HTTP adapter with the simulator as its
own process: the same findings whichever way the center's record arrives."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from app.audit.ledger import SYSTEM_ACTOR
from app.center.http_adapter import CenterLinkSettings, HttpCenterLink
from app.clock import ManualClock, business_date_of
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring
from app.demo import DemoCredentials
from app.main import build_context
from app.reconciliation import service
from tests.inquiry.support import person, sim_client
from tests.processes.support import running_simulator
from tests.reconciliation.support import DAY, direct_entry, sent_inquiry

REPO = Path(__file__).resolve().parents[2]


async def shokai(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread: the test's app keeps serving its event loop (its schedulers may hold
    SQLite's writer lock for a moment, and a blocked loop would never let them finish)."""
    return await asyncio.to_thread(_run_shokai, *args, database_url=database_url)


def _run_shokai(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    env["SHOKAI_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_cli_reconciles_an_imported_file_and_exits_1_on_a_bypass(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    database_url: str,
    tmp_path: Path,
) -> None:
    await sent_inquiry(client, demo, await person(ctx, index=0))
    bypass = await direct_entry(ctx, await person(ctx, index=1), at=clock.now())
    async with sim_client(ctx) as sim:
        export = await sim.get(
            "/center/v1/inquiry-record.ndjson",
            params={"member_code": ctx.settings.center_member_code, "from": DAY["from"], "to": DAY["to"]},
        )
    record_file = tmp_path / "center-2026-11-24.ndjson"
    record_file.write_bytes(export.content)

    result = await shokai(
        "reconcile",
        "center",
        "--from",
        DAY["from"],
        "--to",
        DAY["to"],
        "--file",
        str(record_file),
        "--data-dir",
        str(tmp_path),
        database_url=database_url,
    )

    assert result.returncode == 1, result.stderr
    assert "comparing: 2 center entries" in result.stderr
    report = json.loads(result.stdout)
    assert (report["clean"], report["center_entries"], report["gateway_entries"]) == (False, 2, 1)
    assert report["unmatched_center"] == [bypass["center_inquiry_id"]]
    assert report["alerts"][0] == "CRITICAL INQUIRY_BYPASSED_GATEWAY (1)"
    assert set(report["findings"]) == {"unmatched_center", "daily_count"}

    missing = await shokai(
        "reconcile",
        "center",
        "--from",
        DAY["from"],
        "--to",
        DAY["to"],
        "--file",
        str(tmp_path / "nope.ndjson"),
        "--data-dir",
        str(tmp_path),
        database_url=database_url,
    )
    assert missing.returncode == 2


async def test_reconciling_over_http_with_the_simulator_in_its_own_process(
    settings: Settings, keyring: Keyring, demo: DemoCredentials, tmp_path: Path
) -> None:
    # The simulator process keeps real time, so the period is today's business date there.
    clock = ManualClock(datetime.now(UTC))
    today = business_date_of(clock.now())
    with running_simulator(tmp_path) as simulator:
        people = simulator.people(2)
        async with httpx.AsyncClient(base_url=simulator.url, timeout=10) as sim:
            made = await sim.post(
                "/center/v1/_sim/direct-inquiries",
                json={
                    "member_code": settings.center_member_code,
                    "branch_code": "002",
                    "terminal_id": "CENTER-DESK-2",
                    "operator_ref": "op002",
                    "purpose": "new_credit",
                    "subject": {"name_kana": people[1]["name_kana"], "birth_date": people[1]["birth_date"]},
                },
            )
        assert made.status_code == 201, made.text
        entry = made.json()
        link = HttpCenterLink(
            CenterLinkSettings(
                base_url=simulator.url, member_code=settings.center_member_code, record_page_size=1
            ),
            clock=clock,
        )
        ctx = build_context(settings, clock=clock, keyring=keyring, center=link)
        try:
            run = await service.reconcile_center(ctx, actor=SYSTEM_ACTOR, date_from=today, date_to=today)
            view = await service.run_view(ctx, run_id=run.id)
        finally:
            await link.aclose()
            await ctx.db.dispose()

    assert (run.center_entries, run.gateway_entries, run.source) == (1, 0, "center")
    assert [
        (f.center_inquiry_id, f.branch_code, f.terminal_id) for f in view.findings["unmatched_center"]
    ] == [(entry["center_inquiry_id"], "002", "CENTER-DESK-2")]
    assert view.alerts[0].severity == "critical"
    assert isinstance(run.period_from, date)
