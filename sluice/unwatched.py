"""`cancel_when_unwatched_for`: noticing that nobody has followed a request's channel for a while.

A browser that disconnects never cancels a request by itself: it may be reloading, or its network may be changing,
and the request resumes for it where it was. A workflow that would rather not pay for answers nobody will read sets
`cancel_when_unwatched_for: 30s`; the instance that runs such a request asks the broker, every few seconds, whether
any subscriber — on any instance — follows its channel (`ChannelLogs.watched`), and cancels it once none has for the
whole period. When in doubt it does not cancel: a broker that cannot tell counts as watched, and the period restarts
at every look that finds a subscriber.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

MAX_INTERVAL = 5.0  # seconds between looks at most; a short period is looked at four times


async def until_unwatched(
    watched: Callable[[], Awaitable[bool | None]],
    period: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Return once every look at `watched` for `period` seconds found nobody (from the call on)."""
    interval = min(period / 4, MAX_INTERVAL)
    last_watched = clock()
    while True:
        await sleep(interval)
        try:
            seen = await watched()
        except Exception:  # the broker is unreachable: fail safe
            seen = None
        now = clock()
        if seen is not False:
            last_watched = now
        elif now - last_watched >= period:
            return
