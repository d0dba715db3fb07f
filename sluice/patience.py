"""Waiting for a future for a short while, for many requests at once, without a timer each (`Patience`)."""

from __future__ import annotations

import asyncio
from typing import Any

WATCH_AFTER = 0.2  # seconds: how long a non-streamed answer runs before its client is watched (`api.hangups`)


class Patience:
    """Waits for runs to end, each for at most `seconds`: one ticker task for all the waiting requests of a loop,
    running only while some wait."""

    def __init__(self, seconds: float = WATCH_AFTER) -> None:
        self.seconds = seconds
        self._waiting: dict[asyncio.Future[None], float] = {}  # waiter → when its time is up (loop time)
        self._ticker: asyncio.Task[None] | None = None

    async def ended_within(self, run: asyncio.Future[Any]) -> bool:
        """Wait until `run` ends or `seconds` pass; True if it ended."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        run.add_done_callback(wake)
        self._waiting[waiter] = loop.time() + self.seconds
        if self._ticker is None:
            self._ticker = loop.create_task(self._tick(), name="sluice-hangup-patience")
        try:
            await waiter
        finally:
            self._waiting.pop(waiter, None)
            run.remove_done_callback(wake)
        return run.done()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                await asyncio.sleep(self.seconds / 4)
                now = loop.time()
                for waiter, until in list(self._waiting.items()):
                    if until <= now and not waiter.done():
                        waiter.set_result(None)
        finally:
            self._ticker = None

    async def aclose(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
