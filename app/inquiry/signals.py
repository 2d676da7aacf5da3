"""In-process notice that the outbox has settled an inquiry, so a waiting submit answers at once.

Without it an interactive submit would poll the database on a timer and every answer would arrive up to
one polling step late. The signal is only a hint: the waiter still reads the inquiry's state from the
database, and keeps a slow poll for answers stored by another gateway process.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Inquiries settled while nobody was watching yet (the sender can be quicker than the submit's own
# return path); remembered briefly so the late watcher is woken at once.
RECENT_LIMIT = 1024


class DeliverySignals:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._started: OrderedDict[str, asyncio.Task[Any]] = OrderedDict()

    def started(self, inquiry_id: str, task: asyncio.Task[Any]) -> None:
        """A delivery the submit claimed and started itself, handed to the request that waits for it."""
        self._started[inquiry_id] = task
        while len(self._started) > RECENT_LIMIT:
            self._started.popitem(last=False)

    def take_started(self, inquiry_id: str) -> asyncio.Task[Any] | None:
        return self._started.pop(inquiry_id, None)

    @contextmanager
    def watch(self, inquiry_id: str) -> Iterator[asyncio.Event]:
        """Register before kicking the sender, so an answer stored in between is not missed."""
        event = asyncio.Event()
        if inquiry_id in self._recent:
            del self._recent[inquiry_id]
            event.set()
        self._waiters.setdefault(inquiry_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(inquiry_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[inquiry_id]

    def settled(self, inquiry_id: str) -> None:
        waiters = self._waiters.get(inquiry_id)
        if not waiters:
            self._recent[inquiry_id] = None
            while len(self._recent) > RECENT_LIMIT:
                self._recent.popitem(last=False)
            return
        for event in waiters:
            event.set()
