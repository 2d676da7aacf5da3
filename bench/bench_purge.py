"""Destroying a month of responses (RT-1): one approved purge over N responses past their use period.

    python bench/bench_purge.py                   # SQLite, then PostgreSQL; 100,000 responses
    python bench/bench_purge.py --no-pg --responses 20000

Setup (not measured): a fresh database migrated to head, ``seed_demo``, N released inquiries each with a
sealed response (random bytes of a typical response's size, wrapped key included) received 31 days
before "now", and the purge request of one security officer.

Measured: ``app.retention.service.approve_purge`` by a second officer — the call
``POST /retention/purges/{id}/approve`` makes: both set-based UPDATEs, the deletion record, its ledger
event, the journal append and the commit. Baseline, same run, same engine, after a restore of the keys:
the same two UPDATEs as plain statements in one transaction (what any destruction of N rows must do), so
the ratio shows what the purge adds. A purge blocks other writers while it runs (SQLite's writer lock, the
ledger head on PostgreSQL at its commit), so its seconds are the figure that matters to the branches.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench._support import print_machine, save_result

AT = datetime(2026, 11, 17, 0, 30, tzinfo=UTC)
CHUNK = 5_000


def _principal(user_id: str) -> Any:
    from app.authz.principal import Principal

    return Principal(
        kind="user",
        id=user_id,
        name=user_id,
        session_id=f"bench-{user_id}",
        session_expires_at=AT,
        idle_expires_at=None,
        role_branches={"security_officer": frozenset()},
    )


async def measure(url: str, data_dir: Path, responses: int) -> dict[str, Any]:
    from sqlalchemy import insert, select, update

    from app.clock import ManualClock
    from app.config import Settings
    from app.crypto.keyring import Keyring, new_key_document
    from app.demo import seed_demo
    from app.inquiry.models import Inquiry, SealedResponse
    from app.main import build_context
    from app.retention import service

    clock = ManualClock(AT)
    ctx = build_context(
        Settings(data_dir=data_dir, database_url=url, cookie_secure=False, argon2_memory_kib=1024),
        clock=clock,
        keyring=Keyring(new_key_document(AT)),
    )
    await seed_demo(ctx)
    received = AT - timedelta(days=ctx.policy.response_use_days + 1)
    ids = [str(uuid.uuid4()) for _ in range(responses)]
    for start in range(0, responses, CHUNK):
        chunk = ids[start : start + CHUNK]
        async with ctx.db.session() as session:
            await session.execute(
                insert(Inquiry),
                [
                    {
                        "id": inquiry_id,
                        "number": f"001-20261017-{start + n + 1:06d}",
                        "branch_code": "001",
                        "terminal_id": "T001-01",
                        "operator_id": "op001",
                        "purpose": "new_credit",
                        "customer_status": "new",
                        "subject_sealed": os.urandom(200),
                        "subject_nonce": os.urandom(12),
                        "subject_wrapped_key": os.urandom(40),
                        "subject_kek_id": "kek-bench",
                        "subject_index": f"{start + n:064d}",
                        "subject_pseudonym": f"{start + n:032d}",
                        "consent_type": "loan_application",
                        "consent_reference": f"LA-{start + n:07d}",
                        "consent_obtained_on": date(2026, 10, 10),
                        "draft_hash": "0" * 64,
                        "status": "released",
                        "flags": [],
                        "center_inquiry_id": f"C-{start + n:09d}",
                        "sent_at": received,
                        "center_result_code": "FOUND",
                        "response_state": "released",
                        "created_at": received,
                        "business_date": date(2026, 10, 16),
                        "expires_at": received,
                        "updated_at": received,
                    }
                    for n, inquiry_id in enumerate(chunk)
                ],
            )
            await session.execute(
                insert(SealedResponse),
                [
                    {
                        "inquiry_id": inquiry_id,
                        "center_inquiry_id": f"C-{start + n:09d}",
                        "received_at": received,
                        "ciphertext": os.urandom(1500),
                        "nonce": os.urandom(12),
                        "wrapped_key": os.urandom(40),
                        "kek_id": "kek-bench",
                    }
                    for n, inquiry_id in enumerate(chunk)
                ],
            )
            await session.commit()

    async with ctx.db.session() as session:
        purge = await service.request_purge(session, ctx=ctx, principal=_principal("secoff"), reason="bench")
    started = time.perf_counter()
    async with ctx.db.session() as session:
        _, deletion = await service.approve_purge(
            session, ctx=ctx, principal=_principal("secoff2"), purge_id=purge.id
        )
    purge_seconds = time.perf_counter() - started
    assert deletion.count == responses, deletion.count

    # The keys back, as a restore would bring them; then the same two UPDATEs as bare statements.
    async with ctx.db.session() as session:
        await session.execute(update(SealedResponse).values(wrapped_key=os.urandom(40), deletion_id=None))
        await session.execute(update(Inquiry).values(response_state="released"))
        await session.commit()
    started = time.perf_counter()
    async with ctx.db.session() as session:
        await session.execute(
            update(SealedResponse)
            .where(SealedResponse.wrapped_key.is_not(None), SealedResponse.received_at < AT)
            .values(wrapped_key=None, ciphertext=b"", deletion_id="baseline")
        )
        await session.execute(
            update(Inquiry)
            .where(
                Inquiry.id.in_(
                    select(SealedResponse.inquiry_id).where(SealedResponse.deletion_id == "baseline")
                ),
                Inquiry.response_state != "destroyed",
            )
            .values(response_state="destroyed")
        )
        await session.commit()
    baseline_seconds = time.perf_counter() - started
    await ctx.db.dispose()
    return {
        "responses": responses,
        "purge_seconds": round(purge_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "ratio": round(purge_seconds / baseline_seconds, 2),
        "responses_per_second": round(responses / purge_seconds),
    }


def report(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name}: {r['responses']} responses destroyed in {r['purge_seconds']:.2f} s "
        f"({r['responses_per_second']}/s); bare UPDATEs {r['baseline_seconds']:.2f} s; ratio {r['ratio']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--responses", type=int, default=100_000)
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    print_machine()
    results: dict[str, Any] = {"args": vars(args)}
    from app.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/purge.db"
        upgrade(url)
        results["sqlite"] = asyncio.run(measure(url, Path(tmp), args.responses))
        report("SQLite", results["sqlite"])
    if not args.no_pg:
        from tests.support.pgserver import PostgresServer

        with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
            server.create_database("bench_purge")
            url = server.dsn("bench_purge")
            upgrade(url)
            results["postgresql"] = asyncio.run(measure(url, Path(tmp), args.responses))
            report("PostgreSQL", results["postgresql"])
    print(f"\nsaved {save_result('bench_purge', results)}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
