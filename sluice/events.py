"""Channel events: the one stream protocol (DESIGN.md §3).

Every event is a frozen dataclass. The broker assigns `seq` when the event is appended and serialises it once with
`to_wire`, so fan-out to many subscribers never re-encodes an event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar

import orjson


def utc_timestamp() -> str:
    """ISO-8601 UTC with milliseconds and a `Z`, as in DESIGN.md §3."""
    millis = int(time.time() * 1000)
    seconds, rest = divmod(millis, 1000)
    if seconds != _second[0]:  # every event stamps one; the date and time part is formatted once per second
        _second[0], _second[1] = seconds, datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{rest:03d}Z"


_second: list[Any] = [None, ""]  # the last second stamped, and its text


@dataclass(frozen=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"
    terminal: ClassVar[bool] = False
    ts: str = field(default_factory=utc_timestamp)

    def payload(self) -> dict[str, Any]:
        # Shallow on purpose: orjson encodes nested values itself, and `asdict` deep-copies every event's data.
        return {name: getattr(self, name) for name in _payload_names(type(self))}

    def to_wire(self, seq: int) -> str:
        return orjson.dumps({"seq": seq, "type": self.type, "ts": self.ts, **self.payload()}).decode()


@cache
def _payload_names(cls: type[Event]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name != "ts")


@dataclass(frozen=True, kw_only=True)
class StatusEvent(Event):
    type: ClassVar[str] = "status"
    status: str


@dataclass(frozen=True, kw_only=True)
class AttemptEvent(Event):
    type: ClassVar[str] = "attempt"
    provider: str
    model: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class DeltaEvent(Event):
    type: ClassVar[str] = "delta"
    text: str


@dataclass(frozen=True, kw_only=True)
class PartialEvent(Event):
    type: ClassVar[str] = "partial"
    data: Any


@dataclass(frozen=True, kw_only=True)
class ResetEvent(Event):
    type: ClassVar[str] = "reset"
    reason: str


@dataclass(frozen=True, kw_only=True)
class FailoverEvent(Event):
    type: ClassVar[str] = "failover"
    from_: str
    to: str
    error: str

    def payload(self) -> dict[str, Any]:
        return {"from": self.from_, "to": self.to, "error": self.error}


@dataclass(frozen=True, kw_only=True)
class WebhookEvent(Event):
    type: ClassVar[str] = "webhook"
    state: str
    attempt: int
    status_code: int | None = None


@dataclass(frozen=True, kw_only=True)
class ResponseEvent(Event):
    type: ClassVar[str] = "response"
    terminal: ClassVar[bool] = True
    data: Any
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    terminal: ClassVar[bool] = True
    code: str
    message: str


TERMINAL_TYPES = frozenset({ResponseEvent.type, ErrorEvent.type})


@dataclass(frozen=True, slots=True)
class WireEvent:
    """An event as held in a channel log: its number, type and JSON text (encoded once, sent to every subscriber)."""

    seq: int
    type: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    def as_dict(self) -> dict[str, Any]:
        return orjson.loads(self.data)
