"""Reconciling a month of the center's inquiry record: 1,000,000 entries (issue 4, RC-1 target).

    python bench/bench_reconcile.py                  # SQLite, then PostgreSQL
    python bench/bench_reconcile.py --no-pg          # SQLite only
    python bench/bench_reconcile.py --entries 100000

Setup (not measured): a fresh database migrated to head, ``seed_demo`` for users and branches, and
``--entries`` gateway inquiries sent over November 2026 (Core bulk insert; the sealed subject is dummy
bytes, the subject blind index is real). The center's record of the same month is written as the
NDJSON file an auditor receives (app/center/record_file.py): one entry per gateway inquiry plus
``BYPASSES`` entries made directly at the center, which the run must find.

Measured in a fresh child process (so peak RSS is the run's own): ``reconcile_center`` over the file —
the call behind ``shokai reconcile center --file`` — staging, comparing, findings, aggregates.
Baseline, same child, before the run: reading and validating every entry of the same file
(``read_record_file_sync``), the input the run cannot avoid parsing. Printed: seconds, entries/s, the
ratio run/baseline and peak RSS.

Target: ≤ 30 s with bounded memory (peak RSS ≤ 300 MB) on SQLite and on PostgreSQL.
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

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 300.0
MONTH_FROM = date(2026, 11, 1)
MONTH_TO = date(2026, 11, 30)
START = datetime(2026, 10, 31, 15, 0, 30, tzinfo=UTC)  # 2026-11-01 00:00:30 JST
SPAN = timedelta(days=29, hours=23)
BYPASSES = 10
CHUNK = 10_000
BRANCHES = (("001", "op001", "T001-01"), ("002", "op002", "T002-01"))


def _settings(url: str, data_dir: Path) -> Any:
    from app.config import Settings

    return Settings(data_dir=data_dir, database_url=url, cookie_secure=False, reconcile_monthly_enabled=False)


def _center_line(n: int, inquiry_id: str | None, at: datetime, branch: tuple[str, str, str]) -> bytes:
    return (
        json.dumps(
            {
                "entry_id": f"E{n:010d}",
                "kind": "inquiry",
                "center_inquiry_id": f"C-{n:09d}",
                "at": at.isoformat(),
                "member_code": "M0001",
                "branch_code": branch[0],
                "terminal_id": branch[2] if inquiry_id else "CENTER-DESK",
                "operator_ref": branch[1],
                "purpose": "new_credit",
                "subject": {"name_kana": _kana(n), "birth_date": _birth(n).isoformat()},
                "via": "gateway" if inquiry_id else "direct",
                "idempotency_key": inquiry_id,
            },
            ensure_ascii=False,
        ).encode()
        + b"\n"
    )


def _kana(n: int) -> str:
    return f"ベンチタロウ{'アイウエオカキクケコ'[n % 10]}{'サシスセソタチツテト'[n // 10 % 10]}"


def _birth(n: int) -> date:
    return date(1960, 1, 1) + timedelta(days=n % 15_000)


async def populate(url: str, data_dir: Path, keys_json: str, entries: int, record_path: Path) -> None:
    from sqlalchemy import insert

    from app.clock import ManualClock
    from app.crypto.keyring import Keyring
    from app.demo import seed_demo
    from app.inquiry.models import Inquiry
    from app.main import build_context

    ctx = build_context(
        _settings(url, data_dir), keyring=Keyring(json.loads(keys_json)), clock=ManualClock(START)
    )
    await seed_demo(ctx)
    step = SPAN / entries
    rows: list[dict[str, Any]] = []
    with record_path.open("wb") as record:
        for n in range(entries):
            branch = BRANCHES[n % 2]
            sent = START + step * n
            inquiry_id = str(uuid.uuid4())
            lookup = f"{_kana(n)}|{_birth(n).isoformat()}"
            record.write(_center_line(n, inquiry_id, sent - timedelta(milliseconds=5), branch))
            if n % (entries // BYPASSES) == 0:
                record.write(_center_line(entries + n, None, sent, branch))
            rows.append(
                {
                    "id": inquiry_id,
                    "number": f"{branch[0]}-B-{n:08d}",
                    "branch_code": branch[0],
                    "terminal_id": branch[2],
                    "operator_id": branch[1],
                    "purpose": "new_credit",
                    "customer_status": "new",
                    "subject_sealed": b"-",
                    "subject_nonce": b"-",
                    "subject_wrapped_key": b"-",
                    "subject_kek_id": "kek-1",
                    "subject_index": ctx.keyring.blind_index(lookup, domain="subject"),
                    "subject_pseudonym": "-",
                    "consent_type": "loan_application",
                    "consent_reference": f"LA-{n:07d}",
                    "consent_obtained_on": date(2026, 10, 20),
                    "draft_hash": "0" * 64,
                    "status": "released",
                    "flags": [],
                    "approval_method": "confirmer_credentials",
                    "approval_confirmer_id": "cf001",
                    "approved_at": sent - timedelta(seconds=30),
                    "center_inquiry_id": f"C-{n:09d}",
                    "sent_at": sent,
                    "center_result_code": "FOUND",
                    "response_state": "released",
                    "created_at": sent - timedelta(minutes=1),
                    "business_date": (sent + timedelta(hours=9)).date(),
                    "expires_at": sent + timedelta(minutes=30),
                    "updated_at": sent,
                }
            )
            if len(rows) == CHUNK:
                async with ctx.db.session() as session:
                    await session.execute(insert(Inquiry), rows)
                    await session.commit()
                rows = []
    if rows:
        async with ctx.db.session() as session:
            await session.execute(insert(Inquiry), rows)
            await session.commit()
    await ctx.db.dispose()


def child_reconcile(url: str, data_dir: str, keys_path: str, record_path: str) -> dict[str, Any]:
    from app.audit.ledger import SYSTEM_ACTOR
    from app.center.interface import DetachedCenterLink
    from app.center.record_file import read_record_file, read_record_file_sync
    from app.clock import ManualClock
    from app.crypto.keyring import Keyring
    from app.main import build_context
    from app.reconciliation import service

    keyring = Keyring(json.loads(Path(keys_path).read_text(encoding="utf-8")))
    ctx = build_context(
        _settings(url, Path(data_dir)),
        keyring=keyring,
        clock=ManualClock(START + timedelta(days=31)),
        center=DetachedCenterLink(),
    )
    path = Path(record_path)
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    parsed = sum(1 for _ in read_record_file_sync(path))
    baseline = time.perf_counter() - started

    async def run() -> dict[str, Any]:
        started = time.perf_counter()
        done = await service.reconcile_center(
            ctx,
            actor=SYSTEM_ACTOR,
            date_from=MONTH_FROM,
            date_to=MONTH_TO,
            entries=read_record_file(path),
            source="file",
        )
        seconds = time.perf_counter() - started
        rss = peak_rss_mb()
        await ctx.db.dispose()
        return {
            "center_entries": done.center_entries,
            "gateway_entries": done.gateway_entries,
            "findings": done.finding_counts,
            "seconds": seconds,
            "baseline_seconds": baseline,
            "baseline_entries": parsed,
            "ratio": seconds / baseline,
            "rss_after_imports_mb": rss_before,
            "peak_rss_mb": rss,
        }

    return asyncio.run(run())


def measure(url: str, data_dir: Path, entries: int) -> dict[str, Any]:
    from app.crypto.keyring import new_key_document

    keys_path = data_dir / "keys.json"
    keys_path.write_text(json.dumps(new_key_document(START)), encoding="utf-8")
    record_path = data_dir / "center-record-2026-11.ndjson"
    started = time.perf_counter()
    asyncio.run(populate(url, data_dir, keys_path.read_text(encoding="utf-8"), entries, record_path))
    setup = time.perf_counter() - started
    result = run_child(
        Path(__file__), ["--child", url, str(data_dir), str(keys_path), str(record_path)], timeout=1800
    )
    expected = {"unmatched_center": BYPASSES, "daily_count": result["findings"].get("daily_count", 0)}
    if result["center_entries"] != entries + BYPASSES or result["findings"] != expected:
        raise SystemExit(f"the run did not find exactly the {BYPASSES} bypasses: {result}")
    result.update({"setup_seconds": setup, "entries": entries})
    return result


def report(backend: str, r: dict[str, Any]) -> None:
    ok_time = "MET" if r["seconds"] <= TARGET_SECONDS else "MISSED"
    ok_rss = "MET" if r["peak_rss_mb"] <= TARGET_RSS_MB else "MISSED"
    print(
        f"\n{backend}: {r['center_entries']:,} center entries against {r['gateway_entries']:,} gateway "
        f"inquiries (setup {r['setup_seconds']:.0f} s, not measured); findings {r['findings']}"
    )
    print(
        f"  reconcile    {r['seconds']:7.2f} s  ({r['center_entries'] / r['seconds']:,.0f} entries/s)"
        f"   target <= {TARGET_SECONDS:.0f} s: {ok_time}"
    )
    entries = r["baseline_entries"]
    print(f"  baseline     {r['baseline_seconds']:7.2f} s  (read and validate {entries:,} entries)")
    print(f"  ratio reconcile/baseline = {r['ratio']:.1f}")
    print(
        f"  peak RSS     {r['peak_rss_mb']:7.1f} MB (after imports {r['rss_after_imports_mb']:.1f} MB)"
        f"   target <= {TARGET_RSS_MB:.0f} MB: {ok_rss}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--child", nargs=4, metavar=("URL", "DATA_DIR", "KEYS", "RECORD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_reconcile(*args.child)))
        return
    print_machine()
    results: dict[str, Any] = {"args": vars(args)}
    from app.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/reconcile.db"
        upgrade(url)
        results["sqlite"] = measure(url, Path(tmp), args.entries)
        report("SQLite", results["sqlite"])
    if not args.no_pg:
        from tests.support.pgserver import PostgresServer

        with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
            server.create_database("bench_reconcile")
            url = server.dsn("bench_reconcile")
            upgrade(url)
            results["postgresql"] = measure(url, Path(tmp), args.entries)
            report("PostgreSQL", results["postgresql"])
    print(f"\nresults: {save_result('bench_reconcile', results)}")


if __name__ == "__main__":
    main()
