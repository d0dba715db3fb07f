"""Reading a channel for a subscriber: replay what it missed, follow live events, stop after the terminal one.

Shared by the WebSocket, SSE, Phoenix and `POST /v1/ai` / chat-completion streaming paths. Yields batches of events,
or None when `heartbeat` seconds passed with nothing new (the transport then sends its keep-alive).

An idle subscriber only waits on the broker. The store is read when the log is not held: the request finished longer
ago than the retention, or the broker lost the log (then the subscription says so with `LogLost`). What the log
cannot tell — a request recorded as finished whose end was never announced because the gateway died in between — is
repaired on the write side (`sluice.worker`), not by every reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from sluice.broker.base import ChannelLogs
from sluice.broker.errors import LogLost
from sluice.errors import NotFound, ServiceUnavailable
from sluice.events import WireEvent
from sluice.lifecycle.outcome import terminal_from_store
from sluice.store import RequestRecord

_LOG_WAIT = 0.25  # how often a subscriber looks for a log that recovery is about to reopen


class RequestRecords(Protocol):
    async def get_request(self, request_id: str) -> RequestRecord | None: ...


async def channel_batches(
    logs: ChannelLogs, records: RequestRecords, channel_id: str, after: int, heartbeat: float
) -> AsyncIterator[list[WireEvent] | None]:
    while True:
        info = await logs.log_info(channel_id)
        waited = 0.0
        while info is None:
            # The log is gone (retention passed, broker data lost) or not yet reopened: the store says what happened.
            if waited == 0.0:
                record = await records.get_request(channel_id)
                if record is None:
                    raise NotFound(f"no channel {channel_id!r}", code="channel_not_found")
                if record.finished:
                    if record.terminal_seq is None or after < record.terminal_seq:
                        yield [terminal_from_store(record)]
                    return
            # Unfinished with no log: recovery will reopen it; keep the subscriber alive meanwhile (and look at the
            # store again once per heartbeat).
            await asyncio.sleep(_LOG_WAIT)
            waited += _LOG_WAIT
            if waited >= heartbeat:
                waited = 0.0
                yield None
            info = await logs.log_info(channel_id)
        subscription = logs.subscribe(channel_id, after)
        try:
            if info.finished and after >= info.last_seq:
                return
            while True:
                try:
                    batch = await subscription.next_batch(heartbeat)
                except LogLost:
                    break  # the log vanished while we waited (a shared broker lost its data): ask the store
                if not batch:
                    yield None
                    continue
                after = batch[-1].seq
                yield batch
                if batch[-1].terminal:
                    return
        finally:
            subscription.close()


async def wait_terminal(logs: ChannelLogs, records: RequestRecords, channel_id: str, quiet: float) -> WireEvent:
    """The channel's terminal event, once it comes (503 once the channel stayed silent for `quiet` seconds)."""
    async for batch in channel_batches(logs, records, channel_id, 0, quiet):
        if batch is None:
            raise ServiceUnavailable(f"no result within {quiet:.0f}s; poll /v1/requests/{channel_id}")
        if batch[-1].terminal:
            return batch[-1]
    raise ServiceUnavailable(f"the request's events ended without a result; poll /v1/requests/{channel_id}")


def parse_after(value: str | None) -> int:
    """`after` / `Last-Event-ID` → the last seq the client saw (0 = from the start)."""
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise ValueError(f"'after' must be a non-negative integer (the last seq you received), not {value!r}")
    return int(value)
