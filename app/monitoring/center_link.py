"""The center link's status in the ledger (LG-4): when it went down and when it came back.

The circuit breaker (app/center/circuit.py) decides the link's state; this watch records the two
changes an operator and an auditor ask about afterwards: ``center_link.down`` when the link stops
letting calls through after repeated failures, and ``center_link.up`` when a call gets through again,
with how long it was down and how many trial calls failed meanwhile. The trials themselves (one per
cool-down while the center stays away) are counted, not recorded one by one: a center that is away
all night would otherwise write thousands of events that say nothing new.

The breaker tells the watch synchronously, in the middle of a center call, where no database write
belongs; the change is queued with its time and written by ``run_forever`` in its own transaction.
At shutdown ``close`` lets the writer finish what is queued and stop — not a cancellation, which could
land between a write's commit and its removal from the queue and have the change written twice. Each
worker process has its own breaker and records its own view. The events name no subject and no inquiry.

    watch = CenterLinkWatch(ctx)
    stop_watching = ctx.center.watch_state(watch.state_changed)
    writer = asyncio.create_task(watch.run_forever())
    ...
    stop_watching()
    await watch.close(writer)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.audit.ledger import SYSTEM_ACTOR, record
from app.clock import rfc3339
from app.context import AppContext

log = logging.getLogger("shokai.monitoring")

# Changes waiting for the database. Each one is a down or an up, so even a flapping link adds them no
# faster than the breaker's threshold of failures allows; the bound only matters if the database is
# away for a long time as well, and then the oldest are dropped (and said so in the log).
MAX_QUEUED = 1000
RETRY_SECONDS = 5.0
CLOSE_SECONDS = 10.0


@dataclass(frozen=True)
class LinkChange:
    action: str  # center_link.down | center_link.up
    at: datetime
    details: dict[str, Any]


class CenterLinkWatch:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._queued: deque[LinkChange] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._down_since: datetime | None = None
        self._failed_trials = 0

    def state_changed(self, previous: str, current: str) -> None:
        """The breaker's listener: ``closed`` is up; ``open`` and ``half_open`` are down."""
        now = self._ctx.clock.now()
        if current == "closed":
            if self._down_since is None:
                return
            down_seconds = (now - self._down_since).total_seconds()
            change = LinkChange(
                "center_link.up",
                now,
                {"down_seconds": round(down_seconds, 1), "failed_trials": self._failed_trials},
            )
            self._down_since = None
        elif previous == "closed":
            self._down_since, self._failed_trials = now, 0
            change = LinkChange("center_link.down", now, {"state": current})
        else:
            if previous == "half_open" and current == "open":
                self._failed_trials += 1  # a trial call failed: still down
            return
        if len(self._queued) >= MAX_QUEUED:
            dropped = self._queued.popleft()
            log.error("center link status change of %s not recorded: queue full", rfc3339(dropped.at))
        self._queued.append(change)
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def flush(self) -> int:
        """Write every queued change, oldest first, each in its own transaction; the number written."""
        written = 0
        while self._queued:
            change = self._queued[0]
            async with self._ctx.db.session() as session:
                record(
                    session,
                    actor=SYSTEM_ACTOR,
                    action=change.action,
                    object_type="center_link",
                    details={**change.details, "changed_at": rfc3339(change.at)},
                )
                await session.commit()
                # At once after the commit: nothing may come between the two that leaves it queued.
                self._queued.popleft()
            written += 1
        return written

    async def run_forever(self) -> None:
        """Write changes as they come, until ``close``: then what is queued, and stop."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                if self._closing:
                    return  # close reports what is left
                # The database may be away along with the center; the changes stay queued for later.
                log.exception("center link status changes could not be recorded; retrying")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RETRY_SECONDS):
                        await self._wake.wait()  # a close (or a new change) tries again at once
                self._wake.set()
                continue
            if self._closing:
                return

    async def close(self, writer: asyncio.Task[None], *, within: float = CLOSE_SECONDS) -> None:
        """Stop ``writer`` (the task running ``run_forever``) once it has written what is queued, waiting
        at most ``within`` seconds: a database that stopped answering must not hold the shutdown."""
        self._closing = True
        self._wake.set()
        # asyncio.wait neither raises the writer's error nor cancels it when the shutdown itself is
        # cancelled, so a write is not cut in half between its commit and its removal from the queue.
        if not writer.done():
            await asyncio.wait({writer}, timeout=within)
        if not writer.done():
            writer.cancel()
            await asyncio.wait({writer}, timeout=1.0)
        if writer.done() and not writer.cancelled() and (error := writer.exception()) is not None:
            log.error("the center link status writer had stopped with an error", exc_info=error)
        if self._queued:
            log.error(
                "%d center link status changes not recorded at the stop (the oldest of %s)",
                len(self._queued),
                rfc3339(self._queued[0].at),
            )
