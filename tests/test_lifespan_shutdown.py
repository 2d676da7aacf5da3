"""The lifespan's shutdown ends every background job, even one that lost its first cancellation."""

from __future__ import annotations

import asyncio

from app.main import _stop


async def test_shutdown_ends_a_job_that_lost_its_cancellation() -> None:
    """A library can swallow a cancellation (``asyncio.wait_for`` on Python 3.11 does when the awaited
    thing completes at the same moment); the job then sleeps on, and a shutdown that cancelled once
    would wait for it for ever — a gateway that never stops, a test run that never ends."""
    sleeping = asyncio.Event()
    lost = []

    async def job() -> None:
        while True:
            try:
                sleeping.set()
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if not lost:
                    lost.append(True)  # swallowed once, as wait_for can
                    continue
                raise

    task = asyncio.create_task(job())
    await sleeping.wait()

    async with asyncio.timeout(10):
        await _stop([task])

    assert lost == [True]
    assert task.cancelled()
