"""Typed results of the SDK's calls (frozen dataclasses; the raw JSON is kept in `raw`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Accepted:
    """`POST /v1/ai/async` accepted the request. Hand `browser_params()` to the browser SDK's `connect()`."""

    channel_id: str
    request_id: str
    websocket_url: str
    ws_token: str
    status_url: str
    events_url: str
    project_id: str | None = None
    websocket_channel: str | None = None
    cancel_url: str | None = None  # POST it to cancel the request, no key needed: give it to a page with a stop button
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Accepted:
        return cls(
            channel_id=body["channel_id"],
            request_id=body.get("request_id", body["channel_id"]),
            websocket_url=body["websocket_url"],
            ws_token=body["ws_token"],
            status_url=body.get("status_url", ""),
            events_url=body.get("events_url", ""),
            project_id=body.get("project_id"),
            websocket_channel=body.get("websocket_channel"),
            cancel_url=body.get("cancel_url"),
            raw=body,
        )

    def browser_params(self, *, cancellable: bool = False) -> dict[str, str]:
        """What a browser needs to follow the channel: `{channel_id, websocket_url, ws_token}` (no API key);
        `cancellable=True` adds `cancel_url`, with which the page's `cancel()` stops the request."""
        params = {"channel_id": self.channel_id, "websocket_url": self.websocket_url, "ws_token": self.ws_token}
        if cancellable and self.cancel_url:
            params["cancel_url"] = self.cancel_url
        return params


@dataclass(frozen=True)
class Result:
    """A finished request's answer (`POST /v1/ai`)."""

    channel_id: str
    request_id: str
    status: str
    data: Any
    meta: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Result:
        return cls(
            channel_id=body["channel_id"],
            request_id=body.get("request_id", body["channel_id"]),
            status=body["status"],
            data=body.get("data"),
            meta=body.get("meta"),
            raw=body,
        )

    def parse(self, model: type[M]) -> M:
        """The data validated into a Pydantic model (e.g. the one passed as `schema=`)."""
        return model.model_validate(self.data)


@dataclass(frozen=True)
class RequestInfo:
    """`GET /v1/requests/{id}`: where a request is in its lifecycle, and its result once finished."""

    id: str
    channel_id: str
    workflow: str
    status: str
    data: Any = None
    error: dict[str, str] | None = None
    meta: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created_at: str | None = None
    completed_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RequestInfo:
        return cls(
            id=body["id"],
            channel_id=body.get("channel_id", body["id"]),
            workflow=body.get("workflow", ""),
            status=body["status"],
            data=body.get("data"),
            error=body.get("error"),
            meta=body.get("meta"),
            metadata=body.get("metadata"),
            attempts=list(body.get("attempts") or []),
            created_at=body.get("created_at"),
            completed_at=body.get("completed_at"),
            raw=body,
        )


@dataclass(frozen=True)
class ChannelEvent:
    """One event of a channel (DESIGN.md §3). Type-specific fields are in `fields` and readable as `event["text"]`."""

    seq: int
    type: str
    ts: str
    fields: dict[str, Any] = field(default_factory=dict)

    TERMINAL = frozenset({"response", "error"})

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ChannelEvent:
        rest = {k: v for k, v in body.items() if k not in ("seq", "type", "ts")}
        return cls(seq=int(body.get("seq", 0)), type=str(body["type"]), ts=str(body.get("ts", "")), fields=rest)

    @property
    def terminal(self) -> bool:
        return self.type in self.TERMINAL

    @property
    def data(self) -> Any:
        """The object of a `partial` or `response` event."""
        return self.fields.get("data")

    @property
    def text(self) -> str:
        """The text of a `delta` event ('' for other types)."""
        return str(self.fields.get("text", ""))

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)
