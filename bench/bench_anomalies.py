"""Anomaly analysis (LG-3) over 1,000,000 inquiries: ``app.audit.anomalies.analyse`` on SQLite.

    python bench/bench_anomalies.py                  # 1,000,000 inquiries over 30 days, 400 users
    python bench/bench_anomalies.py --inquiries 200000 --rebuild

The data set is built once with stdlib ``sqlite3`` into a database migrated by ``app.migrate.upgrade``
and cached under ``bench/results/``: 1M inquiries (10 % CENTER_NO_TRADE_INFO, 3 % at night, 2 % about
someone already inquired about), one ``inquiry.created`` ledger event each, and 200,000 response reads.
The ledger rows carry placeholder hashes: the analysis reads, never verifies. It runs in a fresh
interpreter over the last 16 days with the 14 days before as the users' baseline, so every row is read.
Target: <= 10 s.

Baseline, in the same run over the same database: stdlib ``sqlite3`` counting the same ledger rows per
actor and hour and the inquiries per operator (the minimum scan the analysis needs).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import hashlib
import inspect
import json
import random
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench._support import ROOT, peak_rss_mb, print_machine, results_dir, run_child, save_result

BUILD_VERSION = "anomalies-v2"
TARGET_SECONDS = 10.0
FIRST_DAY = date(2026, 10, 1)
DAYS = 30


def cache_path(inquiries: int) -> Path:
    digest = hashlib.sha256(BUILD_VERSION.encode())
    digest.update(inspect.getsource(build).encode())
    for migration in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(migration.read_bytes())
    return results_dir() / f"anomalies-{inquiries}-{digest.hexdigest()[:12]}.db"


def build(path: Path, inquiries: int) -> float:
    from app.migrate import upgrade

    started = time.perf_counter()
    building = path.with_name(path.name + ".building")
    building.unlink(missing_ok=True)
    upgrade(f"sqlite+aiosqlite:///{building}")
    rng = random.Random(20261124)
    conn = sqlite3.connect(building, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    users = [(f"u{n:04d}", f"{n % 40 + 1:03d}") for n in range(400)]
    inquiry_sql = (
        "INSERT INTO inquiries (id, number, branch_code, terminal_id, operator_id, purpose, "
        "customer_status, subject_sealed, subject_nonce, subject_wrapped_key, subject_kek_id, "
        "subject_index, subject_pseudonym, "
        "consent_type, consent_reference, consent_obtained_on, draft_hash, status, flags, response_state, "
        "center_result_code, released_at, created_at, business_date, expires_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, 'new_credit', 'new', x'00', x'00', x'00', 'k1', ?, ?, 'loan_application', "
        "'LA-1', '2026-09-30', ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?)"
    )
    event_sql = (
        "INSERT INTO audit_events (seq, at, actor_id, actor_roles, terminal_id, address, action, "
        "object_type, object_id, outcome, details, request_id, prev_hash, hash) "
        "VALUES (?, ?, ?, '[\"operator\"]', ?, '10.0.0.1', ?, 'inquiry', ?, 'success', '{}', NULL, ?, ?)"
    )
    zero = "0" * 64
    seq = 0
    rows: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    span = DAYS * 86_400
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC) - timedelta(hours=9)
    for number in range(inquiries):
        user, branch = users[rng.randrange(len(users))]
        # Mostly office hours in JST, a few at night.
        at = start + timedelta(seconds=rng.randrange(span))
        if rng.random() < 0.97:
            at = at.replace(hour=rng.randint(0, 8))  # 09:00-17:59 JST
        local_day = (at + timedelta(hours=9)).date()
        subject = rng.randrange(number // 50 + 1) if rng.random() < 0.02 else number
        no_trade = rng.random() < 0.1
        released = None if no_trade else at + timedelta(minutes=10)
        text = at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        inquiry_id = f"{number:036d}"
        rows.append(
            (
                inquiry_id,
                f"{branch}-{number:012d}",
                branch,
                f"T{branch}-01",
                user,
                # Mostly distinct people; one inquiry in fifty is about someone already inquired about.
                f"{subject:064x}",
                f"k1:{subject:032x}",
                zero,
                "center_error" if no_trade else "released",
                "none" if no_trade else "released",
                "CENTER_NO_TRADE_INFO" if no_trade else "FOUND",
                released.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
                if released
                else None,
                text,
                local_day.isoformat(),
                text,
                text,
            )
        )
        seq += 1
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        events.append((seq, stamp, user, f"T{branch}-01", "inquiry.created", inquiry_id, zero, zero))
        if number % 5 == 0:
            seq += 1
            read = (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            events.append((seq, read, user, f"T{branch}-01", "inquiry.response_read", inquiry_id, zero, zero))
        if len(rows) >= 50_000:
            conn.executemany(inquiry_sql, rows)
            conn.executemany(event_sql, events)
            rows.clear()
            events.clear()
    conn.executemany(inquiry_sql, rows)
    conn.executemany(event_sql, events)
    conn.executemany(
        "INSERT INTO user_roles (user_id, role, branch_code, granted_at, granted_by) "
        "VALUES (?, 'operator', ?, '2026-01-01 00:00:00.000000', 'bench')",
        users,
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    building.rename(path)
    return time.perf_counter() - started


def child(url: str) -> dict[str, Any]:
    from app.audit.anomalies import AnomalyThresholds, analyse
    from app.db import Database
    from app.lists.calendar import BusinessCalendar

    db = Database(url)

    async def run() -> tuple[list[dict[str, Any]], float]:
        started = time.perf_counter()
        async with db.read_session() as session:
            findings = await analyse(
                session,
                calendar=BusinessCalendar(),
                thresholds=AnomalyThresholds(baseline_days=14),
                # The last 16 days, against a baseline of the 14 before: every row is read.
                period_from=FIRST_DAY + timedelta(days=14),
                period_to=FIRST_DAY + timedelta(days=DAYS - 1),
            )
        seconds = time.perf_counter() - started
        await db.dispose()
        return findings, seconds

    findings, seconds = asyncio.run(run())
    kinds: dict[str, int] = {}
    for finding in findings:
        kinds[finding["kind"]] = kinds.get(finding["kind"], 0) + 1
    return {"seconds": seconds, "findings": len(findings), "by_kind": kinds, "peak_rss_mb": peak_rss_mb()}


def baseline(path: Path) -> float:
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    conn.execute(
        "SELECT actor_id, terminal_id, action, substr(at, 1, 13), count(*) FROM audit_events "
        "GROUP BY actor_id, terminal_id, action, substr(at, 1, 13)"
    ).fetchall()
    conn.execute("SELECT operator_id, count(*) FROM inquiries GROUP BY operator_id").fetchall()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inquiries", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    print_machine()
    path = cache_path(args.inquiries)
    if args.rebuild or not path.exists():
        for stale in results_dir().glob(f"anomalies-{args.inquiries}-*.db"):
            stale.unlink()
        print(f"building {args.inquiries:,} inquiries at {path.relative_to(ROOT)} ...", flush=True)
        print(f"  built in {build(path, args.inquiries):.1f} s", flush=True)
    runs = []
    bases = []
    for attempt in range(2):
        runs.append(run_child(Path(__file__), ["--child", f"sqlite+aiosqlite:///{path}"]))
        bases.append(baseline(path))
        print(
            f"  run {attempt + 1}: analyse {runs[-1]['seconds']:.2f} s; baseline scan {bases[-1]:.2f} s",
            flush=True,
        )
    best = min(runs, key=lambda r: r["seconds"])
    base = min(bases)
    met = best["seconds"] <= TARGET_SECONDS
    print(
        f"analyse over {args.inquiries:,} inquiries ({DAYS} days): {best['seconds']:.2f} s,"
        f" {best['findings']} findings {best['by_kind']}, peak RSS {best['peak_rss_mb']:.1f} MB"
    )
    print(f"  baseline (stdlib sqlite3 group-by scans): {base:.2f} s; ratio {best['seconds'] / base:.2f}")
    print(f"  target <= {TARGET_SECONDS:.0f} s: {'MET' if met else 'MISSED'}")
    save_result(
        "bench_anomalies", {"inquiries": args.inquiries, "best": best, "runs": runs, "baseline_s": base}
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
