"""The seams the lifecycle (and the engine) write through: protocols only, so both are tested without a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sluice.events import Event, WireEvent

if TYPE_CHECKING:
    from sluice.lifecycle.outcome import Outcome


class RequestEnded(Exception):
    """The request ended while its run was still going (it was cancelled): nothing the run adds can be seen any more,
    so the run stops. Raised by a run's channel (`Channel(run=True)`) for an event the log refused."""


class ChannelWriter(Protocol):
    """One request's channel (`sluice.channel.writer.Channel` over the broker)."""

    async def emit(self, event: Event) -> WireEvent | None:
        """Append `event` to the request's channel; None if the channel already ended (a run's channel raises
        `RequestEnded` instead, for any event but a terminal one)."""
        ...


class OutcomeRecorder(Protocol):
    """Where one request's end is recorded (the store, or the pass-through's write-behind request log)."""

    async def record(self, outcome: Outcome) -> bool:
        """Record the outcome; False (and nothing written) if the request had already finished."""
        ...

    async def announced(self, terminal_seq: int | None) -> None:
        """The terminal event went out with this number (None: the channel had already ended)."""
        ...
