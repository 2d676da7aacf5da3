"""Generating every daily list of one day: 500 branches, 100,000 inquiries (issue 4 target).

    python bench/bench_lists.py                  # SQLite, then PostgreSQL
    python bench/bench_lists.py --no-pg          # SQLite only
    python bench/bench_lists.py --branches 50 --inquiries 10000

Setup (not measured): a fresh database migrated to head, ``seed_demo`` for the users, ``--branches``
extra branches and ``--inquiries`` inquiries sent and answered on one business day, spread evenly over
the branches, each with a sealed subject exactly as the gateway stores it.

Measured in a fresh child process (so peak RSS is generation's own): ``app.lists.service.generate`` for
the day over every branch — the same call the schedule, ``shokai lists generate`` and
``POST /daily-lists/generate`` make — producing a subject list (C) and a count list (D) per branch.
Baseline, same child, same engine, after generation: one scan of the day's inquiries through the ORM,
opening every sealed subject, which is the input generation cannot avoid reading. Printed: seconds,
lists/s, the ratio generation/baseline, the CPU time of both (this process, all its threads) and peak
RSS. The child has no center (as ``shokai lists generate``): generation never calls it.

Target: ≤ 10 s and peak RSS ≤ 300 MB on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench._support import peak_rss_mb, print_machine, run_child, save_result

TARGET_SECONDS = 10.0
TARGET_RSS_MB = 300.0
DAY = date(2026, 11, 17)  # a Tuesday, a business day
AT = datetime(2026, 11, 17, 0, 30, tzinfo=UTC)  # 09:30 JST
CHUNK = 5_000


def _settings(url: str, data_dir: Path) -> Any:
    from app.config import Settings

    return Settings(data_dir=data_dir, database_url=url, cookie_secure=False)


async def populate(url: str, data_dir: Path, keys_json: str, branches: int, inquiries: int) -> None:
    from sqlalchemy import insert

    from app.authz.models import Branch
    from app.clock import ManualClock
    from app.crypto.keyring import Keyring
    from app.demo import seed_demo
    from app.inquiry.models import Inquiry
    from app.inquiry.sealing import seal_subject
    from app.main import build_context

    document = json.loads(keys_json)
    ctx = build_context(_settings(url, data_dir), keyring=Keyring(document), clock=ManualClock(AT))
    await seed_demo(ctx)
    codes = [f"{100 + i:03d}" for i in range(branches)]
    async with ctx.db.session() as session:
        await session.execute(
            insert(Branch),
            [
                {
                    "code": code,
                    "name": f"ベンチ支店{code}",
                    "is_hq": False,
                    "status": "active",
                    "created_at": AT,
                }
                for code in codes
            ],
        )
        await session.commit()
    rows: list[dict[str, Any]] = []
    for n in range(inquiries):
        code = codes[n % branches]
        sent = AT + timedelta(seconds=n % 28_800)
        inquiry = Inquiry(id=str(uuid.uuid4()))
        subject = {
            "name_kana": f"ベンチ タロウ{n % 997}",
            "name_kanji": None,
            "birth_date": (date(1960, 1, 1) + timedelta(days=n % 15_000)).isoformat(),
            "address": "東京都千代田区大手町1-1-1",
        }
        seal_subject(ctx, inquiry, subject)
        rows.append(
            {
                "id": inquiry.id,
                "number": f"{code}-20261117-{n // branches + 1:05d}",
                "branch_code": code,
                "terminal_id": f"T{code}-01",
                "operator_id": "op001",
                "purpose": "new_credit",
                "customer_status": "new",
                "subject_sealed": inquiry.subject_sealed,
                "subject_nonce": inquiry.subject_nonce,
                "subject_wrapped_key": inquiry.subject_wrapped_key,
                "subject_kek_id": inquiry.subject_kek_id,
                "subject_index": inquiry.subject_index,
                "subject_pseudonym": inquiry.subject_pseudonym,
                "consent_type": "loan_application",
                "consent_reference": f"LA-{n:07d}",
                "consent_obtained_on": date(2026, 11, 10),
                "draft_hash": "0" * 64,
                "status": "released",
                "flags": [],
                "approval_method": "confirmer_credentials",
                "approval_confirmer_id": "cf001",
                "approved_at": sent,
                "center_inquiry_id": f"C-{n:09d}",
                "sent_at": sent,
                "center_result_code": "FOUND",
                "response_state": "released",
                "created_at": sent,
                "business_date": DAY,
                "expires_at": sent + timedelta(minutes=30),
                "updated_at": sent,
            }
        )
        if len(rows) == CHUNK:
            await _insert(ctx, Inquiry, rows)
            rows = []
    if rows:
        await _insert(ctx, Inquiry, rows)
    await ctx.db.dispose()


async def _insert(ctx: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    from sqlalchemy import insert

    async with ctx.db.session() as session:
        await session.execute(insert(model), rows)
        await session.commit()


def child_generate(url: str, data_dir: str, keys_path: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.audit.ledger import SYSTEM_ACTOR
    from app.center.interface import DetachedCenterLink
    from app.clock import ManualClock
    from app.crypto.keyring import Keyring
    from app.inquiry.models import Inquiry
    from app.inquiry.sealing import open_subject
    from app.lists import service
    from app.lists.models import DailyList, DailyListLine
    from app.main import build_context

    keyring = Keyring(json.loads(Path(keys_path).read_text(encoding="utf-8")))
    # Without a center, as `shokai lists generate` builds it: generation never calls the center, and
    # the in-process simulator's population (about 1 s and its memory) is not part of a list's cost.
    ctx = build_context(
        _settings(url, Path(data_dir)),
        keyring=keyring,
        clock=ManualClock(AT + timedelta(days=1)),
        center=DetachedCenterLink(),
    )
    rss_before = peak_rss_mb()

    async def run() -> dict[str, Any]:
        started, cpu_started = time.perf_counter(), time.process_time()
        generated = await service.generate(ctx, day=DAY, actor=SYSTEM_ACTOR)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        rss_generation = peak_rss_mb()
        started, cpu_started = time.perf_counter(), time.process_time()
        opened = 0
        async with ctx.db.read_session() as session:
            result = await session.stream_scalars(
                select(Inquiry).where(Inquiry.business_date == DAY).execution_options(yield_per=2_000)
            )
            async for inquiry in result:
                open_subject(ctx, inquiry)
                opened += 1
        baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        async with ctx.db.read_session() as session:
            lists = await session.scalar(select(func.count()).select_from(DailyList))
            lines = await session.scalar(select(func.count()).select_from(DailyListLine))
        await ctx.db.dispose()
        return {
            "generated": sum(g.created for g in generated),
            "lists_in_database": lists,
            "lines_in_database": lines,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "baseline_seconds": baseline,
            "baseline_cpu_seconds": baseline_cpu,
            "baseline_rows": opened,
            "ratio": seconds / baseline,
            "rss_after_imports_mb": rss_before,
            "peak_rss_mb": rss_generation,
        }

    return asyncio.run(run())


def measure(url: str, data_dir: Path, branches: int, inquiries: int) -> dict[str, Any]:
    from app.crypto.keyring import new_key_document

    keys_path = data_dir / "keys.json"
    keys_path.write_text(json.dumps(new_key_document(AT)), encoding="utf-8")
    started = time.perf_counter()
    asyncio.run(populate(url, data_dir, keys_path.read_text(encoding="utf-8"), branches, inquiries))
    setup = time.perf_counter() - started
    result = run_child(Path(__file__), ["--child", url, str(data_dir), str(keys_path)], timeout=1800)
    total_branches = branches + 2  # the demo's two branches (HQ 000 has its own lists too if enabled)
    if result["generated"] < 2 * branches or result["lines_in_database"] < 2 * inquiries:
        raise SystemExit(f"generation did not produce every list and line: {result}")
    result.update({"setup_seconds": setup, "branches": total_branches, "inquiries": inquiries})
    return result


def report(backend: str, r: dict[str, Any]) -> None:
    ok_time = "MET" if r["seconds"] <= TARGET_SECONDS else "MISSED"
    ok_rss = "MET" if r["peak_rss_mb"] <= TARGET_RSS_MB else "MISSED"
    print(
        f"\n{backend}: {r['generated']} lists ({r['lines_in_database']:,} lines) for {r['inquiries']:,} "
        f"inquiries at {r['branches']} branches (setup {r['setup_seconds']:.0f} s, not measured)"
    )
    print(
        f"  generation   {r['seconds']:7.2f} s  ({r['generated'] / r['seconds']:.0f} lists/s)"
        f"   target <= {TARGET_SECONDS:.0f} s: {ok_time}"
    )
    print(
        f"  baseline     {r['baseline_seconds']:7.2f} s"
        f"  (scan {r['baseline_rows']:,} inquiries, open subjects)"
    )
    print(f"  ratio generation/baseline = {r['ratio']:.2f}")
    # CPU time of the process (all its threads, so the SQLite thread too; not the PostgreSQL server's):
    # less inflated than wall-clock by other load on a shared machine.
    print(f"  CPU          generation {r['cpu_seconds']:.2f} s, baseline {r['baseline_cpu_seconds']:.2f} s")
    print(
        f"  peak RSS     {r['peak_rss_mb']:7.1f} MB (after imports {r['rss_after_imports_mb']:.1f} MB)"
        f"   target <= {TARGET_RSS_MB:.0f} MB: {ok_rss}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--branches", type=int, default=500)
    parser.add_argument("--inquiries", type=int, default=100_000)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--child", nargs=3, metavar=("URL", "DATA_DIR", "KEYS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_generate(*args.child)))
        return
    print_machine()
    results: dict[str, Any] = {"args": vars(args)}
    from app.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/lists.db"
        upgrade(url)
        results["sqlite"] = measure(url, Path(tmp), args.branches, args.inquiries)
        report("SQLite", results["sqlite"])
    if not args.no_pg:
        from tests.support.pgserver import PostgresServer

        with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
            server.create_database("bench_lists")
            url = server.dsn("bench_lists")
            upgrade(url)
            results["postgresql"] = measure(url, Path(tmp), args.branches, args.inquiries)
            report("PostgreSQL", results["postgresql"])
    print(f"\nsaved {save_result('bench_lists', results)}")


if __name__ == "__main__":
    main()
