"""Ledger export: ``shokai audit export`` (``export_events``) over 1,000,000 events, SQLite, NDJSON and CSV.

    python bench/bench_export.py                 # 1,000,000 events (the cached ledger of bench_verify.py)
    python bench/bench_export.py --events 200000

Each export runs in a fresh interpreter so its peak RSS (VmHWM) is the export's alone; the target is
<= 150 MB (constant memory). Baseline, measured in the same run over the same rows: stdlib ``sqlite3``
reading the same pages and writing ``orjson`` lines with no checks, no async driver, no snapshot.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import sqlite3
import time
from typing import Any

from bench._support import peak_rss_mb, print_machine, results_dir, run_child, save_result

TARGET_PEAK_RSS_MB = 150


def child_export(url: str, fmt: str, out: str) -> dict[str, Any]:
    from app.audit.export import export_events, seq_range
    from app.db import Database

    db = Database(url)
    rss_before = peak_rss_mb()

    async def run() -> tuple[Any, float]:
        started = time.perf_counter()
        found = await seq_range(db, since=None, until=None)
        assert found is not None
        with Path(out).open("wb") as handle:  # noqa: ASYNC230 - the measured code writes a local file
            summary = await export_events(db, handle, first_seq=found[0], last_seq=found[1], fmt=fmt)
        seconds = time.perf_counter() - started
        await db.dispose()
        return summary, seconds

    summary, seconds = asyncio.run(run())
    size = Path(out).stat().st_size
    Path(out).unlink()
    return {
        "count": summary.count,
        "seconds": seconds,
        "events_per_s": summary.count / seconds,
        "bytes": size,
        "rss_after_imports_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
    }


def baseline(path: Path, out: Path, batch: int = 2000) -> float:
    import orjson

    conn = sqlite3.connect(path)
    started = time.perf_counter()
    after = 0
    count = 0
    with out.open("wb") as handle:
        while rows := conn.execute(
            "SELECT seq, at, actor_id, actor_roles, terminal_id, address, action, object_type, "
            "object_id, outcome, details, request_id, prev_hash, hash FROM audit_events "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, batch),
        ).fetchall():
            handle.write(b"".join(orjson.dumps(row) + b"\n" for row in rows))
            count += len(rows)
            after = rows[-1][0]
    seconds = time.perf_counter() - started
    conn.close()
    out.unlink()
    return count / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("URL", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_export(*args.child)))
        return 0

    from bench.bench_verify import cached_ledger

    print_machine()
    path, _keys = cached_ledger(args.events, rebuild=False)
    out = results_dir() / "export.tmp"
    results: dict[str, Any] = {"events": args.events}
    base = baseline(path, out)
    for fmt in ("ndjson", "csv"):
        run = run_child(Path(__file__), ["--child", f"sqlite+aiosqlite:///{path}", fmt, str(out)])
        if run["count"] != args.events:
            raise SystemExit(f"the export did not cover the whole ledger: {run}")
        results[fmt] = run
        verdict = "MET" if run["peak_rss_mb"] <= TARGET_PEAK_RSS_MB else "MISSED"
        print(
            f"  {fmt:<6} {run['events_per_s']:>10,.0f} events/s ({run['seconds']:.1f} s,"
            f" {run['bytes'] / 2**20:,.0f} MiB)  peak RSS {run['peak_rss_mb']:.1f} MB"
            f" (after imports {run['rss_after_imports_mb']:.1f} MB)"
            f"  target <= {TARGET_PEAK_RSS_MB} MB: {verdict}"
        )
    results["baseline_events_per_s"] = base
    print(f"  baseline (stdlib sqlite3 + orjson lines): {base:,.0f} events/s")
    print(f"  ratio ndjson export / baseline: {results['ndjson']['events_per_s'] / base:.2f}")
    save_result("bench_export", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
