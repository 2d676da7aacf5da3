"""Reconciling a month of the center's inquiry record: 1,000,000 entries (issue 4, RC-1 target).

    python bench/bench_reconcile.py                  # SQLite, then PostgreSQL
    python bench/bench_reconcile.py --no-pg          # SQLite only
    python bench/bench_reconcile.py --entries 100000
    python bench/bench_reconcile.py --entries 100000 --rebuild --no-pg

Setup (not measured): a database migrated to head, ``seed_demo`` for users and branches, and
``--entries`` gateway inquiries sent over November 2026, written with stdlib ``sqlite3`` executemany
(PostgreSQL: ``COPY``), the table's indexes dropped for the load and rebuilt after it. The sealed subject
is dummy bytes; the subject blind index is real, so subjects are really compared. The center's record of
the same month is written as the NDJSON file an auditor receives (app/center/record_file.py): one entry
per gateway inquiry plus ``BYPASSES`` entries made directly at the center, which the run must find.
The SQLite database, the key file and the record are cached under ``bench/results/`` keyed by a hash of
the build code and the migrations (``--rebuild`` forces it); each run works on a copy. PostgreSQL is
loaded from the same deterministic rows into a throwaway server each time.

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
import hashlib
import inspect
import json
import random
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench._support import ROOT, load_average, peak_rss_mb, print_machine, results_dir, run_child, save_result

BUILD_VERSION = "reconcile-v2"

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


def cache_dir(entries: int) -> Path:
    """The cached SQLite database, key file and center record, keyed by the code that builds them."""
    digest = hashlib.sha256(BUILD_VERSION.encode())
    for function in (_center_line, _kana, _birth, gateway_inquiries, _seed_directory, build_sqlite):
        digest.update(inspect.getsource(function).encode())
    for migration in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(migration.read_bytes())
    return results_dir() / f"reconcile-{entries}-{digest.hexdigest()[:12]}"


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


INQUIRY_COLUMNS = (
    "id",
    "number",
    "branch_code",
    "terminal_id",
    "operator_id",
    "purpose",
    "customer_status",
    "subject_sealed",
    "subject_nonce",
    "subject_wrapped_key",
    "subject_kek_id",
    "subject_index",
    "subject_pseudonym",
    "consent_type",
    "consent_reference",
    "consent_obtained_on",
    "draft_hash",
    "status",
    "flags",
    "approval_method",
    "approval_confirmer_id",
    "approved_at",
    "center_inquiry_id",
    "sent_at",
    "center_recorded_at",
    "center_result_code",
    "response_state",
    "created_at",
    "business_date",
    "expires_at",
    "updated_at",
)


def gateway_inquiries(entries: int, keys_json: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """The month's gateway inquiries in sending order, as native values in ``INQUIRY_COLUMNS`` order.

    Deterministic for a key file (seeded UUIDs), so PostgreSQL gets the rows the cached record names.
    The sealed subject is dummy bytes; the subject blind index is the real one of the center's entry.
    """
    from app.crypto.keyring import Keyring

    subject_index = Keyring(json.loads(keys_json)).blind_indexer(domain="subject")
    rng = random.Random(20261201)
    step = SPAN / entries
    for n in range(entries):
        branch = BRANCHES[n % 2]
        sent = START + step * n
        yield (
            n,
            (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                f"{branch[0]}-B-{n:08d}",
                branch[0],
                branch[2],
                branch[1],
                "new_credit",
                "new",
                b"-",
                b"-",
                b"-",
                "kek-1",
                subject_index(f"{_kana(n)}|{_birth(n).isoformat()}"),
                "-",
                "loan_application",
                f"LA-{n:07d}",
                date(2026, 10, 20),
                "0" * 64,
                "released",
                "[]",
                "confirmer_credentials",
                "cf001",
                sent - timedelta(seconds=30),
                f"C-{n:09d}",
                sent,
                sent - timedelta(milliseconds=5),  # the center's receipt, as in its record below
                "FOUND",
                "released",
                sent - timedelta(minutes=1),
                (sent + timedelta(hours=9)).date(),
                sent + timedelta(minutes=30),
                sent,
            ),
        )


def _sqlite_value(value: Any) -> Any:
    """The text SQLAlchemy stores on SQLite for DateTime (naive UTC) and Date."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


async def _seed_directory(url: str, data_dir: Path, keys_json: str) -> None:
    """Branches, terminals and users (``seed_demo``), through the app like any deployment's directory."""
    from app.clock import ManualClock
    from app.crypto.keyring import Keyring
    from app.demo import seed_demo
    from app.main import build_context

    ctx = build_context(
        _settings(url, data_dir), keyring=Keyring(json.loads(keys_json)), clock=ManualClock(START)
    )
    await seed_demo(ctx)
    await ctx.db.dispose()


def build_sqlite(directory: Path, entries: int) -> float:
    """Migrated database + directory + ``entries`` inquiries (stdlib executemany, indexes built after the
    load), the key file and the center's record of the month, in ``directory`` (renamed into place)."""
    from app.crypto.keyring import new_key_document
    from app.migrate import upgrade

    started = time.perf_counter()
    building = directory.with_name(directory.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    keys_json = json.dumps(new_key_document(START))
    (building / "keys.json").write_text(keys_json, encoding="utf-8")
    database = building / "reconcile.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    asyncio.run(_seed_directory(url, building, keys_json))
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    indexes = [
        sql
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master"
            " WHERE type = 'index' AND tbl_name = 'inquiries' AND sql IS NOT NULL"
        )
    ]
    for sql in indexes:
        conn.execute(f"DROP INDEX {sql.split()[2]}")
    conn.execute("BEGIN")
    insert = (
        f"INSERT INTO inquiries ({', '.join(INQUIRY_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in INQUIRY_COLUMNS)})"
    )
    rows: list[tuple[Any, ...]] = []
    with (building / "center-record-2026-11.ndjson").open("wb") as record:
        for n, row in gateway_inquiries(entries, keys_json):
            branch = BRANCHES[n % 2]
            sent = row[INQUIRY_COLUMNS.index("sent_at")]
            recorded = row[INQUIRY_COLUMNS.index("center_recorded_at")]
            record.write(_center_line(n, row[0], recorded, branch))
            if n % (entries // BYPASSES) == 0:
                record.write(_center_line(entries + n, None, sent, branch))
            rows.append(tuple(_sqlite_value(value) for value in row))
            if len(rows) >= CHUNK:
                conn.executemany(insert, rows)
                rows.clear()
    conn.executemany(insert, rows)
    conn.execute("COMMIT")
    for sql in indexes:
        conn.execute(sql)
    conn.close()
    building.rename(directory)
    return time.perf_counter() - started


async def load_postgresql(url: str, data_dir: Path, keys_json: str, entries: int) -> None:
    """The same inquiries into a migrated PostgreSQL database: ``COPY``, indexes rebuilt after, ANALYZE."""
    import asyncpg

    await _seed_directory(url, data_dir, keys_json)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        indexes = [
            (name, sql)
            for name, sql in await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'inquiries'"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        ]
        for name, _sql in indexes:
            await conn.execute(f'DROP INDEX "{name}"')
        rows: list[tuple[Any, ...]] = []
        for _n, row in gateway_inquiries(entries, keys_json):
            rows.append(row)
            if len(rows) >= CHUNK * 5:
                await conn.copy_records_to_table("inquiries", records=rows, columns=INQUIRY_COLUMNS)
                rows.clear()
        await conn.copy_records_to_table("inquiries", records=rows, columns=INQUIRY_COLUMNS)
        for _name, sql in indexes:
            await conn.execute(sql)
        # A table the application has been writing for a month has been vacuumed and analysed by
        # autovacuum (hint bits set, statistics), and its pages written out: not a run's work either.
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


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


def measure(backend: str, url: str, data_dir: Path, cached: Path, entries: int) -> dict[str, Any]:
    keys_path = cached / "keys.json"
    record_path = cached / "center-record-2026-11.ndjson"
    result = run_child(
        Path(__file__), ["--child", url, str(data_dir), str(keys_path), str(record_path)], timeout=1800
    )
    expected = {"unmatched_center": BYPASSES, "daily_count": result["findings"].get("daily_count", 0)}
    if result["center_entries"] != entries + BYPASSES or result["findings"] != expected:
        raise SystemExit(f"the run did not find exactly the {BYPASSES} bypasses: {result}")
    result.update(entries=entries, load_average_after=load_average())
    report(backend, result)
    return result


def report(backend: str, r: dict[str, Any]) -> None:
    ok_time = "MET" if r["seconds"] <= TARGET_SECONDS else "MISSED"
    ok_rss = "MET" if r["peak_rss_mb"] <= TARGET_RSS_MB else "MISSED"
    print(
        f"\n{backend}: {r['center_entries']:,} center entries against {r['gateway_entries']:,} gateway "
        f"inquiries; findings {r['findings']}; load average after the run {r['load_average_after']}"
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
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached data set")
    parser.add_argument("--runs", type=int, default=1, help="runs per backend on the same data")
    parser.add_argument(
        "--child", nargs=4, metavar=("URL", "DATA_DIR", "KEYS", "RECORD"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_reconcile(*args.child)))
        return
    print_machine()
    results: dict[str, Any] = {"args": vars(args)}
    cached = cache_dir(args.entries)
    if args.rebuild or not cached.exists():
        for stale in results_dir().glob(f"reconcile-{args.entries}-*"):
            shutil.rmtree(stale)
        print(f"building {args.entries:,} gateway inquiries at {cached.relative_to(ROOT)} ...", flush=True)
        print(f"  built in {build_sqlite(cached, args.entries):.1f} s (not measured)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Each run writes its findings and ledger events: it gets a copy, the cache stays as built.
        shutil.copyfile(cached / "reconcile.db", Path(tmp) / "reconcile.db")
        url = f"sqlite+aiosqlite:///{tmp}/reconcile.db"
        results["sqlite"] = [
            measure("SQLite", url, Path(tmp), cached, args.entries) for _ in range(args.runs)
        ]
    if not args.no_pg:
        from app.migrate import upgrade
        from tests.support.pgserver import PostgresServer

        with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
            server.create_database("bench_reconcile")
            url = server.dsn("bench_reconcile")
            upgrade(url)
            started = time.perf_counter()
            keys_json = (cached / "keys.json").read_text(encoding="utf-8")
            asyncio.run(load_postgresql(url, Path(tmp), keys_json, args.entries))
            print(f"\nPostgreSQL loaded in {time.perf_counter() - started:.1f} s (not measured)", flush=True)
            results["postgresql"] = [
                measure("PostgreSQL", url, Path(tmp), cached, args.entries) for _ in range(args.runs)
            ]
    print(f"\nresults: {save_result('bench_reconcile', results)}")


if __name__ == "__main__":
    main()
