"""Concurrent ledger appends on PostgreSQL: N worker processes through the real path.

    python bench/bench_append_pg.py          # 2 workers x 10,000 events per side, 1 event per transaction
    python bench/bench_append_pg.py --per-tx 3 --events-per-worker 6000

Each worker is a fresh ``spawn`` process that builds the application context with
``app.main.build_context`` and appends events the way the services do: open a session, ``record()``,
``session.commit()`` (the ``before_commit`` hook locks the chain head, chains and inserts; checkpoints
every 1000 events are signed inside the same transactions). All workers start each phase together on
a barrier.

Baseline, same run, same server, same processes, same engine and session class, same transaction size:
plain ``INSERT``s of equivalent rows into ``bench_plain_events`` — a copy of ``audit_events``
(``LIKE ... INCLUDING ALL``: same columns, primary key and indexes) with no chain, no head lock.
The two sides run in alternating phases (plain, chained, chained, plain), half the events each, so a
neighbour's load on a shared machine falls on both alike.

Afterwards ``verify_ledger`` must report the whole chain ok and gapless (``checked`` = every event).
The server is tests/support/pgserver.py's throwaway cluster (fsync and synchronous_commit off).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
import uuid
from typing import Any

from bench._support import ROOT, percentile, print_machine, save_result

TARGET_EVENTS_PER_S = 1_000
PLAIN_TABLE = "bench_plain_events"


# -- worker (a spawned process) ------------------------------------------------------------------------


def worker(
    dsn: str,
    keys_json: str,
    index: int,
    phases: list[tuple[str, int]],
    per_tx: int,
    barrier: Any,
    results: Any,
) -> None:
    try:
        results.put(asyncio.run(_work(dsn, keys_json, index, phases, per_tx, barrier)))
    except BaseException as exc:
        barrier.abort()
        results.put({"worker": index, "error": repr(exc)})
        raise


async def _work(
    dsn: str, keys_json: str, index: int, phases: list[tuple[str, int]], per_tx: int, barrier: Any
) -> dict[str, Any]:
    from sqlalchemy import MetaData, insert, text

    from app.audit.ledger import Actor, canonical_json, record
    from app.audit.models import AuditEvent
    from app.clock import rfc3339
    from app.config import Settings
    from app.crypto.keyring import Keyring
    from app.main import build_context

    with tempfile.TemporaryDirectory(prefix="shokai-bench-") as data_dir:
        # argon2 is not on this path; cheap parameters keep worker start-up short
        settings = Settings(
            database_url=dsn, data_dir=Path(data_dir), argon2_memory_kib=1024, argon2_time_cost=1
        )
        ctx = build_context(settings, keyring=Keyring(json.loads(keys_json)))
        plain = AuditEvent.__table__.to_metadata(MetaData(), name=PLAIN_TABLE)
        branch = f"{index + 1:03d}"
        async with ctx.db.session() as session:  # open the pooled connection before the clock starts
            await session.execute(text("SELECT 1"))
        # seq values for the plain table: disjoint per worker, like the ledger's gapless seq
        plain_seq = index * 1_000_000_000
        made = 0
        measured: list[dict[str, Any]] = []
        for mode, count in phases:
            latencies: list[float] = []
            await asyncio.to_thread(barrier.wait, 120)  # every worker starts each phase together
            started = time.monotonic()
            done = 0
            while done < count:
                size = min(per_tx, count - done)
                request_id = uuid.uuid4().hex
                t0 = time.perf_counter()
                async with ctx.db.session() as session:
                    if mode == "chained":
                        for offset in range(size):
                            record(
                                session,
                                actor=Actor(
                                    id=f"op{index:03d}",
                                    roles=("operator",),
                                    terminal_id=f"T{branch}-01",
                                    address=f"10.0.{index}.10",
                                    request_id=request_id,
                                ),
                                action="inquiry.response_viewed",
                                object_type="inquiry",
                                object_id=f"inq-{index:02d}{made + offset:014x}",
                                details={"branch_code": branch, "purpose": "loan_application"},
                            )
                    else:
                        rows = []
                        for offset in range(size):
                            plain_seq += 1
                            rows.append(
                                {
                                    "seq": plain_seq,
                                    "at": rfc3339(ctx.clock.now()),
                                    "actor_id": f"op{index:03d}",
                                    "actor_roles": canonical_json(["operator"]),
                                    "terminal_id": f"T{branch}-01",
                                    "address": f"10.0.{index}.10",
                                    "action": "inquiry.response_viewed",
                                    "object_type": "inquiry",
                                    "object_id": f"inq-{index:02d}{made + offset:014x}",
                                    "outcome": "success",
                                    "details": canonical_json(
                                        {"branch_code": branch, "purpose": "loan_application"}
                                    ),
                                    "request_id": request_id,
                                    "prev_hash": "0" * 64,
                                    "hash": "0" * 64,
                                }
                            )
                        await session.execute(insert(plain), rows)
                    await session.commit()
                latencies.append(time.perf_counter() - t0)
                done += size
                made += size
            measured.append(
                {
                    "mode": mode,
                    "events": done,
                    "started": started,
                    "finished": time.monotonic(),
                    "latencies": latencies,
                }
            )
        await ctx.db.dispose()
    return {"worker": index, "phases": measured}


# -- parent ---------------------------------------------------------------------------------------------


def abba(count: int, slices: int) -> list[tuple[str, int]]:
    """plain, chained, chained, plain, ...: a linear drift in machine load hits both sides alike."""
    size, rest = divmod(count, slices)
    phases: list[tuple[str, int]] = []
    for k in range(slices):
        n = size + (1 if k < rest else 0)
        phases += [("plain", n), ("chained", n)] if k % 2 == 0 else [("chained", n), ("plain", n)]
    return phases


def run_workers(
    dsn: str, keys_json: str, workers: int, phases: list[tuple[str, int]], per_tx: int
) -> dict[str, dict[str, Any]]:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(workers)
    results = spawn.Queue()
    procs = [
        spawn.Process(target=worker, args=(dsn, keys_json, i, phases, per_tx, barrier, results))
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    errors = [o for o in outcomes if "error" in o]
    if errors or any(proc.exitcode != 0 for proc in procs):
        raise SystemExit(f"workers failed: {errors}")
    summary: dict[str, dict[str, Any]] = {}
    for number, (mode, _count) in enumerate(phases):
        parts = [o["phases"][number] for o in outcomes]
        entry = summary.setdefault(mode, {"mode": mode, "events": 0, "seconds": 0.0, "latencies": []})
        entry["events"] += sum(p["events"] for p in parts)
        # a phase lasts from the first worker's start to the last worker's finish
        entry["seconds"] += max(p["finished"] for p in parts) - min(p["started"] for p in parts)
        entry["latencies"] += [lat for p in parts for lat in p["latencies"]]
    for entry in summary.values():
        latencies = entry.pop("latencies")
        entry["transactions"] = len(latencies)
        entry["events_per_s"] = entry["events"] / entry["seconds"]
        entry["tx_p50_ms"] = percentile(latencies, 50) * 1000
        entry["tx_p95_ms"] = percentile(latencies, 95) * 1000
        entry["tx_p99_ms"] = percentile(latencies, 99) * 1000
    return summary


async def verify_after(dsn: str, keys_json: str, plain_expected: int) -> dict[str, Any]:
    from sqlalchemy import text

    from app.audit.service import checkpoint_rule, verify_ledger
    from app.config import Settings
    from app.crypto.keyring import Keyring
    from app.db import Database

    db = Database(dsn)
    try:
        # The workers append under the default settings' checkpoint rule.
        rule = checkpoint_rule(Settings(database_url=dsn))
        report = await verify_ledger(db, Keyring(json.loads(keys_json)), rule)
        async with db.read_session() as session:
            checkpoints = (await session.execute(text("SELECT count(*) FROM audit_checkpoints"))).scalar_one()
            plain_rows = (await session.execute(text(f"SELECT count(*) FROM {PLAIN_TABLE}"))).scalar_one()
    finally:
        await db.dispose()
    if plain_rows != plain_expected:
        raise SystemExit(f"baseline table holds {plain_rows} rows, expected {plain_expected}")
    return {**report.as_dict(), "checkpoints_in_table": checkpoints}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--events-per-worker", type=int, default=10_000, help="chained events per worker")
    parser.add_argument("--per-tx", type=int, default=1, help="events per transaction (default 1)")
    parser.add_argument("--slices", type=int, default=2, help="ABBA slices per side (default 2)")
    args = parser.parse_args()

    from app.clock import SystemClock
    from app.crypto.keyring import new_key_document
    from app.migrate import upgrade
    from tests.support.pgserver import PostgresServer

    print_machine()
    keys_json = json.dumps(new_key_document(SystemClock().now()))
    total = args.workers * args.events_per_worker
    phases = abba(args.events_per_worker, args.slices)
    with PostgresServer() as server:
        server.create_database("bench_append")
        dsn = server.dsn("bench_append")
        upgrade(dsn)
        server.psql(f"CREATE TABLE {PLAIN_TABLE} (LIKE audit_events INCLUDING ALL)", "bench_append")
        print(
            f"PostgreSQL at {server.host}:{server.port}; {args.workers} workers x {args.events_per_worker:,}"
            f" events per side, {args.per_tx} per transaction, phases {' '.join(m for m, _ in phases)}",
            flush=True,
        )
        summary = run_workers(dsn, keys_json, args.workers, phases, args.per_tx)
        verify = asyncio.run(verify_after(dsn, keys_json, total))
    chained, plain = summary["chained"], summary["plain"]

    gapless = verify["ok"] and verify["checked"] == total and verify["head"]["seq"] == total
    met = chained["events_per_s"] >= TARGET_EVENTS_PER_S
    print()
    print(f"appends on PostgreSQL, {args.workers} processes, {args.per_tx} event(s) per transaction:")
    for run in (chained, plain):
        label = "chained (real path)" if run["mode"] == "chained" else "baseline plain INSERT"
        print(
            f"  {label:<22} {run['events_per_s']:>8,.0f} events/s"
            f" ({run['events']:,} in {run['seconds']:.2f} s)  tx p50 {run['tx_p50_ms']:.2f}"
            f" p95 {run['tx_p95_ms']:.2f} p99 {run['tx_p99_ms']:.2f} ms"
        )
    print(f"  ratio chained/plain = {chained['events_per_s'] / plain['events_per_s']:.3f}")
    print(f"  target >= {TARGET_EVENTS_PER_S:,} events/s: {'MET' if met else 'MISSED'}")
    print(
        f"verify after the run: ok={verify['ok']} checked={verify['checked']:,}"
        f" head seq={verify['head']['seq']:,} checkpoints={verify['checkpoints_checked']}"
        f" -> {'gapless chain' if gapless else 'CHAIN PROBLEM'}"
    )
    saved = save_result(
        "bench_append_pg" if args.per_tx == 1 else f"bench_append_pg_tx{args.per_tx}",
        {
            "workers": args.workers,
            "per_tx": args.per_tx,
            "chained": chained,
            "plain": plain,
            "verify": verify,
        },
    )
    print(f"saved {saved.relative_to(ROOT)}")
    return 0 if gapless else 1


if __name__ == "__main__":
    sys.exit(main())
