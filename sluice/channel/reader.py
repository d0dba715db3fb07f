"""Reading a channel for a subscriber: replay what it missed, follow live events, stop after the terminal one.

Shared by the WebSocket, SSE and `POST /v1/ai` streaming paths. Yields batches of encoded events, or None when
`heartbeat` seconds passed with nothing new (the transport then sends its keep-alive).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson

from sluice.errors import NotFound
from sluice.events import WireEvent
from sluice.gateway import Gateway
from sluice.store import RequestRecord

_LOG_WAIT = 0.25
_ANNOUNCE_GRACE = 5.0


async def channel_batches(
    gateway: Gateway, channel_id: str, after: int, heartbeat: float
) -> AsyncIterator[list[WireEvent] | None]:
    while True:
        info = await gateway.broker.log_info(channel_id)
        waited = 0.0
        while info is None:
            # The log is gone (retention passed, broker data lost) or not yet reopened: the store says what happened.
            record = await gateway.store.get_request(channel_id)
            if record is None:
                raise NotFound(f"no channel {channel_id!r}", code="channel_not_found")
            if record.finished:
                if record.terminal_seq is None or after < record.terminal_seq:
                    yield [terminal_from_store(record)]
                return
            # Unfinished with no log: recovery will reopen it; keep the subscriber alive meanwhile.
            await asyncio.sleep(_LOG_WAIT)
            waited += _LOG_WAIT
            if waited >= heartbeat:
                waited = 0.0
                yield None
            info = await gateway.broker.log_info(channel_id)
        subscription = gateway.broker.subscribe(channel_id, after)
        try:
            if info.finished and after >= info.last_seq:
                return
            while True:
                batch = await subscription.next_batch(heartbeat)
                if not batch:
                    if await gateway.broker.log_info(channel_id) is None:
                        break  # the log vanished while we waited (a shared broker lost its data): ask the store
                    if await _never_announced(gateway, channel_id):
                        # Finished in the store but never announced (the gateway died in between, and the shared
                        # log survived): nobody will append the end, so the store gives it.
                        record = await gateway.store.get_request(channel_id)
                        assert record is not None
                        yield [terminal_from_store(record)]
                        return
                    yield None
                    continue
                after = batch[-1].seq
                yield batch
                if batch[-1].terminal:
                    return
        finally:
            subscription.close()


async def _never_announced(gateway: Gateway, channel_id: str) -> bool:
    record = await gateway.store.get_request(channel_id)
    if record is None or not record.finished or record.terminal_seq is not None or record.completed_at is None:
        return False
    # The worker announces the end milliseconds after recording it; only a much older record was abandoned.
    return (datetime.now(UTC) - record.completed_at).total_seconds() > _ANNOUNCE_GRACE


def terminal_from_store(record: RequestRecord) -> WireEvent:
    """The request's terminal event rebuilt from the store, marked `from_store` because its log is no longer held."""
    completed = (record.completed_at or record.created_at).astimezone(UTC)
    ts = completed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # Never announced (see the worker): a number past any the run could have used, so it only moves forward.
    seq = record.terminal_seq or record.seq_reserved + 1
    if record.status == "completed":
        body = {
            "seq": seq,
            "type": "response",
            "ts": ts,
            "data": record.data,
            "meta": record.meta or {},
            "from_store": True,
        }
    else:
        error = record.error or {"code": record.status, "message": f"the request was {record.status}"}
        body = {"seq": seq, "type": "error", "ts": ts, **error, "from_store": True}
    return WireEvent(seq=seq, type=body["type"], data=orjson.dumps(body).decode())


def parse_after(value: str | None) -> int:
    """`after` / `Last-Event-ID` → the last seq the client saw (0 = from the start)."""
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise ValueError(f"'after' must be a non-negative integer (the last seq you received), not {value!r}")
    return int(value)
