"""One ledger-writing process for the concurrency test in test_ledger_postgres.py.

    python -m tests.audit.ledger_writer JOB_FILE

JOB_FILE is JSON: ``database_url``, ``keys`` (the shared key document), ``writer`` (a name),
``events`` (how many to append), ``tasks`` (concurrent sessions in this process), ``ready_file``
(touched once connected) and ``start_file`` (waited for, so that every writer starts together).
Events are committed through :func:`app.audit.ledger.record` in transactions of 1–5 events.
Prints nothing; a failure exits non-zero with its traceback on stderr.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from app.audit.ledger import Actor, record
from app.config import Settings
from app.crypto.keyring import Keyring
from app.main import build_context

ACTION = "test.concurrent_append"
START_TIMEOUT = 60.0


async def append(job: dict[str, Any]) -> None:
    settings = Settings(
        database_url=job["database_url"],
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        checkpoint_every_events=job.get("checkpoint_every_events", 1000),
    )
    ctx = build_context(settings, keyring=Keyring(job["keys"]))
    writer = str(job["writer"])
    tasks = int(job["tasks"])
    total = int(job["events"])
    try:
        async with ctx.db.engine.connect() as conn:  # connect before the start, not after it
            await conn.exec_driver_sql("SELECT 1")
        await asyncio.to_thread(Path(job["ready_file"]).touch)
        start_file = Path(job["start_file"])
        deadline = time.monotonic() + START_TIMEOUT
        while not await asyncio.to_thread(start_file.exists):
            if time.monotonic() > deadline:
                raise TimeoutError("no start signal")
            await asyncio.sleep(0.001)

        async def run(task: int, count: int) -> None:
            rng = random.Random(f"{writer}/{task}")
            actor = Actor(id=f"writer-{writer}", roles=("system",))
            done = 0
            while done < count:
                size = min(rng.randint(1, 5), count - done)
                async with ctx.db.session() as session:
                    for _ in range(size):
                        record(
                            session,
                            actor=actor,
                            action=ACTION,
                            object_type="test",
                            object_id=f"{writer}/{task}",
                            details={"n": done},
                        )
                        done += 1
                    await session.commit()

        share, rest = divmod(total, tasks)
        await asyncio.gather(*(run(t, share + (1 if t < rest else 0)) for t in range(tasks)))
    finally:
        await ctx.db.dispose()


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    asyncio.run(append(job))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
