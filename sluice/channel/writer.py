"""The write side of one request's channel: appends events and keeps the store's sequence reservation ahead.

The store holds `seq_reserved`, a number no event of the current run reaches. If the broker loses the log (the
in-process broker when the gateway is killed), the recovered run numbers its events from there, so sequence numbers
never go backwards or repeat for a client that saw the old run; the recovered run starts with a `reset` that tells
such a client to drop the partial output it had.
"""

from __future__ import annotations

from typing import Protocol

from sluice.broker.base import ChannelLogs
from sluice.events import Event, WireEvent
from sluice.lifecycle.ports import RequestEnded

SEQ_BLOCK = 10_000
_SAFETY_MARGIN = 1_000


class SeqReservations(Protocol):
    async def reserve_seq(self, request_id: str, reserved: int) -> None:
        """Record that the request's events may be numbered up to `reserved` (durably, before they are)."""
        ...


class Channel:
    """Implements `sluice.engine.ports.ChannelWriter` (and `sluice.lifecycle.finish`'s announcer).

    `run=True`: the channel of a run, which stops (`RequestEnded`) when the log refuses one of its events: the
    request was ended meanwhile (a cancel sealed the log, or announced its end), so whatever the run adds is lost."""

    __slots__ = ("id", "logs", "reservations", "reserved", "run")

    def __init__(
        self,
        logs: ChannelLogs,
        reservations: SeqReservations | None,
        request_id: str,
        seq_reserved: int,
        *,
        run: bool = False,
    ) -> None:
        self.logs = logs
        self.reservations = reservations  # None: nothing durable to keep ahead (a pass-through's run)
        self.id = request_id
        self.reserved = seq_reserved
        self.run = run

    async def emit(self, event: Event) -> WireEvent | None:
        wire = await self.logs.append(self.id, event)
        if wire is None:
            if self.run and not event.terminal:
                raise RequestEnded(f"request {self.id} ended while its run was going")
            return None
        if self.reservations is not None and wire.seq >= self.reserved - _SAFETY_MARGIN:
            self.reserved = wire.seq + SEQ_BLOCK
            await self.reservations.reserve_seq(self.id, self.reserved)
        return wire
