"""In-process counters behind the broker's quota methods: fixed-window hit counts (rate limits) and slots (concurrent
streams). One process, so nothing expires behind anyone's back; a Redis broker keeps the same counts shared."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable


class MemoryCounters:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window index, hits in it)
        self._slots: dict[str, set[str]] = {}

    async def hit_rate(self, key: str, window: float) -> tuple[int, float]:
        """Count a hit in the current `window`-second window: (hits in it so far, seconds until it ends)."""
        moment = self._clock()
        index = math.floor(moment / window)
        current, hits = self._windows.get(key, (index, 0))
        hits = hits + 1 if current == index else 1
        self._windows[key] = (index, hits)
        if len(self._windows) > 10_000:  # one entry per API key in use; drop the ones of past windows
            self._windows = {k: v for k, v in self._windows.items() if v[0] == index}
        return hits, (index + 1) * window - moment

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """Take one of `limit` slots of `key`: a token to release it with, or None if all are taken."""
        held = self._slots.setdefault(key, set())
        if len(held) >= limit:
            return None
        token = uuid.uuid4().hex
        held.add(token)
        return token

    async def release_slot(self, key: str, token: str) -> None:
        held = self._slots.get(key)
        if held is not None:
            held.discard(token)
            if not held:
                del self._slots[key]
