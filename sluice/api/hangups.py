"""Noticing that the client of a non-streamed answer hung up, so its provider call is stopped (`faces.terminal_of`).

Watching costs something on every request, and most short answers end before it could matter: a request is watched
only once it has run for `sluice.patience.WATCH_AFTER` (0.2 s). Until then it waits for its run's end alone, on a
future that one shared ticker (`Patience`) wakes when the time is up: no timer and no listener per request. A client
gone meanwhile is noticed when the watch starts, so its provider call is cancelled that much late at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive

from sluice.patience import Patience


async def hung_up(receive: Receive, run: asyncio.Future[Any], patience: Patience) -> bool:
    """Wait until `run` is done or the client disconnects: True if the client did first.

    Past `patience`, the request's body having been read, the next ASGI message is the disconnect: this task waits
    for it itself and the run's end interrupts the wait (a cancellation the run's done-callback asks for), rather
    than a task per request listening for the disconnect: this is the path of every non-streamed completion."""
    if await patience.ended_within(run):
        return False
    waiter = asyncio.current_task()
    assert waiter is not None
    waiting = woken = False

    def wake(_: object) -> None:
        nonlocal woken
        if waiting:
            woken = True
            waiter.cancel()

    waiting = True
    run.add_done_callback(wake)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
        return True
    except asyncio.CancelledError:
        if woken and waiter.uncancel() == 0:  # the run's end, not the server's: the answer follows
            return False
        raise
    finally:
        waiting = False
        run.remove_done_callback(wake)
