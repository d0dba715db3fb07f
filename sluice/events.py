"""Channel events: the one stream protocol (DESIGN.md §3).

Every event is a frozen dataclass. The broker assigns `seq` when the event is appended and serialises it once with
`to_wire`, so fan-out to many subscribers never re-encodes an event. On the read side a `WireEvent` carries that text
(what transports send as is) and the typed event (`WireEvent.event`): the one the writer appended where it is still
at hand (the in-process broker), else decoded once from the text (`parse_event`). Consumers match on the classes.

Adding an event type: a class here (its `type` and fields), then the consumers that should react to it; `parse_event`
finds it by its `type`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
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

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Event:
        """The event a decoded wire object stands for (its `seq` and `type` are not fields)."""
        values = {name: payload[name] for name in _payload_names(cls) if name in payload}
        return cls(ts=payload.get("ts", ""), **values)


def _payload_names(cls: type[Event]) -> tuple[str, ...]:
    names = _PAYLOAD_NAMES.get(cls)
    if names is None:
        names = _PAYLOAD_NAMES[cls] = tuple(f.name for f in fields(cls) if f.name != "ts")
    return names


_PAYLOAD_NAMES: dict[type[Event], tuple[str, ...]] = {}  # per class: its fields but `ts`, looked up once


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
class ToolCallEvent(Event):
    """A piece of a tool call as it streams: the first piece of call `index` has its `id` and `name`, later ones
    more of its `arguments` (JSON text), as Chat Completions streams `tool_calls[index]`."""

    type: ClassVar[str] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, kw_only=True)
class ThinkingEvent(Event):
    """A piece of the model's reasoning as it streams (`sluice.providers.messages.ThinkingDelta`): more `text` of
    thinking block `index`, its `signature`, or a redacted block's opaque data (`redacted`). On the wire
    `signature` and `redacted` only when set."""

    type: ClassVar[str] = "thinking"
    index: int
    text: str = ""
    signature: str | None = None
    redacted: str | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "text": self.text}
        if self.signature is not None:
            out["signature"] = self.signature
        if self.redacted is not None:
            out["redacted"] = self.redacted
        return out


@dataclass(frozen=True, kw_only=True)
class PartialEvent(Event):
    type: ClassVar[str] = "partial"
    data: Any


@dataclass(frozen=True, kw_only=True)
class ResetEvent(Event):
    type: ClassVar[str] = "reset"
    reason: str


@dataclass(frozen=True, kw_only=True)
class SpliceEvent(Event):
    """The answer goes on in another attempt from where the failed one stopped (`sluice.engine.continuation`):
    nothing streamed is taken back; what follows continues the text at `at_chars` (Unicode code points of the
    answer's text so far). `method`: `prefill` (the provider continued the text itself) or `instruction` (it was
    asked to)."""

    type: ClassVar[str] = "splice"
    from_attempt: int
    to_attempt: int
    at_chars: int
    method: str


@dataclass(frozen=True, kw_only=True)
class FailoverEvent(Event):
    type: ClassVar[str] = "failover"
    from_: str
    to: str
    error: str

    def payload(self) -> dict[str, Any]:
        return {"from": self.from_, "to": self.to, "error": self.error}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> FailoverEvent:
        return cls(ts=payload.get("ts", ""), from_=payload["from"], to=payload["to"], error=payload["error"])


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
    # Rebuilt from the store for a subscriber whose log is no longer held (on the wire only when true).
    from_store: bool = False

    def payload(self) -> dict[str, Any]:
        return {"data": self.data, "meta": self.meta, **({"from_store": True} if self.from_store else {})}


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    terminal: ClassVar[bool] = True
    code: str
    message: str
    from_store: bool = False

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"from_store": True} if self.from_store else {})}


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An event of a type this version does not know (another instance runs a newer one): kept, not understood."""

    kind: str = "unknown"
    fields: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return self.fields


TERMINAL_TYPES = frozenset({ResponseEvent.type, ErrorEvent.type})
EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        StatusEvent,
        AttemptEvent,
        DeltaEvent,
        ToolCallEvent,
        ThinkingEvent,
        PartialEvent,
        ResetEvent,
        SpliceEvent,
        FailoverEvent,
        WebhookEvent,
        ResponseEvent,
        ErrorEvent,
    )
}


def parse_event(payload: dict[str, Any]) -> Event:
    """The typed event of a decoded wire object (`{"seq", "type", "ts", …}`)."""
    cls = EVENT_TYPES.get(payload.get("type", ""))
    if cls is None:
        rest = {k: v for k, v in payload.items() if k not in ("seq", "type", "ts")}
        return UnknownEvent(ts=payload.get("ts", ""), kind=str(payload.get("type")), fields=rest)
    try:
        return cls.from_payload(payload)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {cls.type!r} event: {exc}") from exc


class WireEvent:
    """An event as held in a channel log: its number, type and JSON text (encoded once, sent to every subscriber),
    and the typed event, decoded from the text at most once. Given the typed event, the text is encoded when it is
    first read: an event that only typed readers see (a pass-through nobody follows) is never encoded."""

    __slots__ = ("_data", "_event", "seq", "type")

    def __init__(self, seq: int, type: str, data: str | None = None, event: Event | None = None) -> None:
        if data is None and event is None:
            raise ValueError("a wire event needs its text or its typed event")
        self.seq = seq
        self.type = type
        self._data = data
        self._event = event

    @property
    def data(self) -> str:
        if self._data is None:
            assert self._event is not None  # one of the two is always given
            self._data = self._event.to_wire(self.seq)
        return self._data

    @property
    def event(self) -> Event:
        if self._event is None:
            self._event = parse_event(orjson.loads(self.data))
        return self._event

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WireEvent) and (self.seq, self.type, self.data) == (other.seq, other.type, other.data)

    def __hash__(self) -> int:
        return hash((self.seq, self.type, self.data))

    def __repr__(self) -> str:
        return f"WireEvent(seq={self.seq}, type={self.type!r}, data={self.data!r})"
