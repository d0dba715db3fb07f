"""The write side of one request's channel: appends events and keeps the store's sequence reservation ahead.

The store holds `seq_reserved`, a number no event of the current run reaches. If the broker loses the log (the
in-process broker when the gateway is killed), the recovered run numbers its events from there, so sequence numbers
never go backwards or repeat for a client that saw the old run; the recovered run starts with a `reset` that tells
such a client to drop the partial output it had.
"""

from __future__ import annotations

from sluice.broker.base import Broker
from sluice.events import Event, WireEvent
from sluice.store import Store

SEQ_BLOCK = 10_000
_SAFETY_MARGIN = 1_000


class Channel:
    def __init__(self, broker: Broker, store: Store, request_id: str, seq_reserved: int) -> None:
        self.broker = broker
        self.store = store
        self.id = request_id
        self.reserved = seq_reserved

    async def emit(self, event: Event) -> WireEvent | None:
        wire = await self.broker.append(self.id, event)
        if wire is not None and wire.seq >= self.reserved - _SAFETY_MARGIN:
            self.reserved = wire.seq + SEQ_BLOCK
            await self.store.reserve_seq(self.id, self.reserved)
        return wire
