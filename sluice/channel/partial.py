"""What a request had streamed when it ended early (cancelled): read from its channel's log, which every instance
can read, so the instance that records a cancel need not be the one that ran the request.

The output is what a subscriber was shown: the text of the `delta` events and the last `partial` object since the
last `reset` (which told subscribers to drop what came before it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sluice.broker.base import ChannelLogs
from sluice.events import DeltaEvent, PartialEvent, WireEvent

_READ = frozenset({DeltaEvent.type, PartialEvent.type, "reset"})  # the types that make the output (others not decoded)


@dataclass(frozen=True)
class Streamed:
    text: str = ""
    partial: Any = None  # the structured object parsed so far (a workflow with a schema), or None

    @property
    def data(self) -> Any:
        """The output as a request's `data`: the partial object where the answer has a schema, else the assistant
        message so far (`{"content": …}`); None when nothing had streamed."""
        if self.partial is not None:
            return self.partial
        return {"content": self.text} if self.text else None


def streamed_of(events: Iterable[WireEvent]) -> Streamed:
    parts: list[str] = []
    partial: Any = None
    for wire in events:
        if wire.type not in _READ:
            continue
        match wire.event:
            case DeltaEvent(text=text):
                parts.append(text)
            case PartialEvent(data=data):
                partial = data
            case _:  # a reset: what came before it was withdrawn
                parts, partial = [], None
    return Streamed(text="".join(parts), partial=partial)


async def streamed_output(logs: ChannelLogs, channel_id: str, upto: int | None = None) -> Streamed:
    """What the channel's log holds (up to seq `upto`), as output; nothing if the log is not held."""
    subscription = logs.subscribe(channel_id, 0)
    events: list[WireEvent] = []
    try:
        while batch := await subscription.next_batch(0):  # no waiting: what is held right now
            events.extend(wire for wire in batch if upto is None or wire.seq <= upto)
            if upto is not None and batch[-1].seq >= upto:
                break
    finally:
        subscription.close()
    return streamed_of(events)
