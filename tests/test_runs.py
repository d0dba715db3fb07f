"""The runs of one instance, stopped by a cancel heard from the broker (in process here; Redis in the e2e tests)."""

from __future__ import annotations

import asyncio
import contextlib

from sluice.broker.memory import MemoryBroker
from sluice.runs import Runs


async def test_a_cancel_stops_the_run_of_its_project_only_and_says_why() -> None:
    broker = MemoryBroker()
    runs = Runs(broker)
    why: list[str | None] = []

    async def run() -> None:
        try:
            await asyncio.Event().wait()  # a provider call that never ends by itself
        except asyncio.CancelledError:
            why.append(runs.stopping("r1"))
            raise

    task = asyncio.create_task(run())
    runs.add("r1", task, "p1")
    await asyncio.sleep(0)
    assert runs.stop("r1", "api", project_id="p2") is None and not task.cancelled()  # not that project's
    await broker.announce_cancel("r1", "p1", "unwatched")  # as every instance hears it
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled() and why == ["unwatched"]
    assert not runs.running("r1") and runs.stopping("r1") is None  # forgotten once it ended
    assert runs.stop("r1", "api") is None


async def test_stop_everywhere_stops_a_local_run_at_once() -> None:
    runs = Runs(MemoryBroker())
    task = asyncio.create_task(asyncio.Event().wait())
    runs.add("r1", task, "p1")
    await runs.stop_everywhere("r1", "api")
    assert task.cancelling() == 1  # once, though the broker's signal reached this instance too
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_run_that_is_recording_its_end_is_not_stopped() -> None:
    runs = Runs(MemoryBroker())
    task = asyncio.create_task(asyncio.Event().wait())
    runs.add("r1", task, "p1")
    runs.ending("r1")  # it has its outcome: cutting its end short would lose it
    assert runs.stop("r1", "api") is None and not runs.running("r1")
    task.cancel()
