"""Login latency with the production Argon2id parameters, against one raw Argon2id verify.

    python bench/bench_login.py                 # 60 measured logins
    python bench/bench_login.py --logins 200
    python bench/bench_login.py --concurrency 4   # 4 logins at a time vs 4 raw verifies at a time

The full HTTP path: ``POST /api/v1/auth/login`` on ``create_app`` through ``httpx.ASGITransport``
(middleware, validation, terminal check, throttle row lock, Argon2id verify in a worker thread, roles,
session row, ledger event, commit, token). SQLite file database migrated with ``app.migrate.upgrade``
and seeded with ``seed_demo``; ``Settings()`` defaults for Argon2id (m=19 MiB, t=2, p=1).

Baseline, same run, interleaved round by round with the logins so a busy machine affects both alike:
``argon2.PasswordHasher(...).verify`` with the same parameters on a hash of a demo password.
The Argon2id share is raw verify p50 / login p50. With ``--concurrency N`` each round is N logins at
once (N different users) against N raw verifies at once in threads (argon2-cffi releases the GIL).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import tempfile
import time
from typing import Any

from bench._support import ROOT, percentile, print_machine, save_result

BRANCH_USERS = ("op001", "cf001", "bm001", "op002", "cf002", "bm002")


async def measure(logins: int, warmup: int, concurrency: int) -> dict[str, Any]:
    import httpx
    from argon2 import PasswordHasher, Type

    from app.clock import SystemClock
    from app.config import Settings
    from app.crypto.keyring import Keyring, new_key_document
    from app.demo import seed_demo
    from app.main import build_context, create_app
    from app.migrate import upgrade_async

    with tempfile.TemporaryDirectory(prefix="shokai-bench-login-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'shokai.db'}"
        await upgrade_async(url)
        settings = Settings(data_dir=Path(tmp), database_url=url, cookie_secure=False)
        params = {
            "memory_kib": settings.argon2_memory_kib,
            "time_cost": settings.argon2_time_cost,
            "parallelism": settings.argon2_parallelism,
        }
        ctx = build_context(settings, keyring=Keyring(new_key_document(SystemClock().now())))
        demo = await seed_demo(ctx)
        app = create_app(context=ctx, background_tasks=False)
        users = {u["id"]: u for u in demo.users}
        terminals = {t["branch_code"]: t for t in demo.terminals}
        raw = PasswordHasher(
            time_cost=params["time_cost"],
            memory_cost=params["memory_kib"],
            parallelism=params["parallelism"],
            type=Type.ID,
        )
        raw_hash = raw.hash(users["op001"]["password"])

        password = users["op001"]["password"]

        def raw_verify() -> float:
            t0 = time.perf_counter()
            raw.verify(raw_hash, password)
            return time.perf_counter() - t0

        login_s: list[float] = []
        raw_s: list[float] = []
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:

            async def login(user_id: str) -> float:
                user = users[user_id]
                term = terminals[user["branch_codes"][0]]
                t0 = time.perf_counter()
                response = await http.post(
                    "/auth/login",
                    json={"user_id": user["id"], "password": user["password"]},
                    headers={"X-Terminal-Id": term["id"], "X-Terminal-Key": term["key"]},
                )
                if response.status_code != 200:
                    raise SystemExit(f"login failed: {response.status_code} {response.text}")
                return time.perf_counter() - t0

            rounds = warmup + -(-logins // concurrency)
            for number in range(rounds):
                who = [BRANCH_USERS[(number + k) % len(BRANCH_USERS)] for k in range(concurrency)]
                logged = await asyncio.gather(*(login(user_id) for user_id in who))
                if concurrency == 1:
                    raws = [raw_verify()]
                else:
                    raws = await asyncio.gather(*(asyncio.to_thread(raw_verify) for _ in range(concurrency)))
                if number >= warmup:
                    login_s += logged
                    raw_s += raws
        await ctx.db.dispose()
    return {"argon2": params, "login_s": login_s, "raw_s": raw_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3, help="rounds not measured")
    parser.add_argument("--concurrency", type=int, default=1, help="logins in flight at once (default 1)")
    args = parser.parse_args()
    if not 1 <= args.concurrency <= len(BRANCH_USERS):
        parser.error(f"--concurrency must be 1..{len(BRANCH_USERS)} (one demo user per login in flight)")

    print_machine()
    data = asyncio.run(measure(args.logins, args.warmup, args.concurrency))
    login_ms = [s * 1000 for s in data["login_s"]]
    raw_ms = [s * 1000 for s in data["raw_s"]]
    summary = {
        "logins": len(login_ms),
        "concurrency": args.concurrency,
        "argon2": data["argon2"],
        "login_p50_ms": percentile(login_ms, 50),
        "login_p95_ms": percentile(login_ms, 95),
        "raw_argon2_p50_ms": percentile(raw_ms, 50),
        "raw_argon2_p95_ms": percentile(raw_ms, 95),
    }
    summary["ratio_login_to_raw_p50"] = summary["login_p50_ms"] / summary["raw_argon2_p50_ms"]
    summary["argon2_share_p50"] = summary["raw_argon2_p50_ms"] / summary["login_p50_ms"]
    a = data["argon2"]
    print(
        f"Argon2id m={a['memory_kib']} KiB ({a['memory_kib'] / 1024:g} MiB), t={a['time_cost']}, "
        f"p={a['parallelism']} (Settings() defaults)"
    )
    print(
        f"{len(login_ms)} logins over HTTP (ASGITransport), SQLite, {args.concurrency} at a time,"
        " interleaved with raw verifies:"
    )
    print(
        f"  login (full path)          p50 {summary['login_p50_ms']:5.1f} ms   "
        f"p95 {summary['login_p95_ms']:7.1f} ms"
    )
    print(
        f"  baseline raw argon2 verify p50 {summary['raw_argon2_p50_ms']:5.1f} ms   "
        f"p95 {summary['raw_argon2_p95_ms']:7.1f} ms"
    )
    print(f"  ratio login/raw (p50) = {summary['ratio_login_to_raw_p50']:.2f}")
    print(f"  Argon2id share of a login (p50) = {summary['argon2_share_p50']:.0%}")
    name = "bench_login" if args.concurrency == 1 else f"bench_login_c{args.concurrency}"
    saved = save_result(name, summary)
    print(f"saved {saved.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
