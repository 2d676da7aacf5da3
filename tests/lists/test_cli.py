"""`shokai lists generate` (DL-1, HQ batch jobs): per-branch progress, idempotent runs, and one-line
refusals with exit 2 for a bad date, an unknown branch or a day that has not begun."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select

from app.context import AppContext
from app.crypto.keyring import Keyring
from app.demo import DemoCredentials
from app.lists.models import DailyList

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-27"  # a Friday, past by the real clock the CLI keeps


async def shokai(*args: str, database_url: str, keyring: Keyring) -> subprocess.CompletedProcess[str]:
    # In a thread, so this test's event loop is never blocked while the CLI runs.
    return await asyncio.to_thread(_run, *args, database_url=database_url, keyring=keyring)


def _run(*args: str, database_url: str, keyring: Keyring) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    env["SHOKAI_DATABASE_URL"] = database_url
    env["SHOKAI_KEYS"] = json.dumps(keyring._document)  # the test instance's keys, not a new key file
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_lists_generate_reports_progress_per_branch_and_refuses_bad_input_with_exit_2(
    ctx: AppContext, demo: DemoCredentials, database_url: str, keyring: Keyring, tmp_path: Path
) -> None:
    common = {"database_url": database_url, "keyring": keyring}
    first = await shokai("lists", "generate", "--date", DAY, "--data-dir", str(tmp_path), **common)
    assert first.returncode == 0, first.stderr
    progress = first.stderr.strip().splitlines()
    assert progress == [
        "[1/3] branch 000: 2 list(s), 2 created",
        "[2/3] branch 001: 2 list(s), 2 created",
        "[3/3] branch 002: 2 list(s), 2 created",
    ]
    assert first.stdout.strip().splitlines()[-1] == f"6 list(s) for {DAY}"
    async with ctx.db.read_session() as session:
        made = list((await session.scalars(select(DailyList))).all())
    assert {(d.branch_code, d.business_date) for d in made} == {
        (code, date(2026, 11, 27)) for code in ("000", "001", "002")
    }

    again = await shokai(
        "lists", "generate", "--date", DAY, "--branch", "001", "--data-dir", str(tmp_path), **common
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == "[1/1] branch 001: 2 list(s), 0 created"
    assert "already there" in again.stdout

    for args, says in (
        (["--date", "2026-13-01"], "bad --date"),
        (["--date", DAY, "--branch", "999"], "NOT_FOUND"),
        (["--date", "2099-12-31"], "BUSINESS_DATE_IN_FUTURE"),
    ):
        refused = await shokai("lists", "generate", *args, "--data-dir", str(tmp_path), **common)
        assert refused.returncode == 2, (args, refused.stderr)
        assert says in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "Traceback" not in refused.stderr
    async with ctx.db.read_session() as session:
        assert len(list((await session.scalars(select(DailyList))).all())) == 6
