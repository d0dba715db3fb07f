"""What the sync and async clients share: configuration, request shapes, and reading responses."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from sluice.client._body import Messages, Schema, request_body
from sluice.client._errors import RequestFailed, TransportError, api_error
from sluice.client._models import Accepted, ChannelEvent, Result

DEFAULT_URL = "http://127.0.0.1:8080"
# A streamed channel may stay quiet for long (time to first token, waiting for a callback): heartbeats arrive every
# 15 s by default, so a read timeout well above that detects a dead connection without cutting a slow request.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


@dataclass(frozen=True)
class Config:
    base_url: str
    api_key: str
    timeout: float
    max_reconnects: int

    @classmethod
    def resolve(cls, base_url: str | None, api_key: str | None, timeout: float, max_reconnects: int) -> Config:
        url = base_url or os.environ.get("SLUICE_URL") or DEFAULT_URL
        key = api_key or os.environ.get("SLUICE_API_KEY")
        if not key:
            raise ValueError("pass api_key=… or set SLUICE_API_KEY (create one with: sluice keys create --name app)")
        return cls(base_url=url.rstrip("/"), api_key=key, timeout=timeout, max_reconnects=max_reconnects)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "User-Agent": "sluice-python"}


def submit_body(
    workflow: str,
    messages: Messages,
    schema: Schema,
    *,
    delivery_method: str | None = None,
    webhook_url: str | None = None,
    events: list[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    fields = {
        "delivery_method": delivery_method,
        "webhook_url": webhook_url,
        "events": events,
        "metadata": dict(metadata) if metadata is not None else None,
        **(extra or {}),
    }
    return request_body(workflow, messages, schema=schema, extra=fields)


def idempotency(key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": key} if key else {}


def read_json(response: httpx.Response) -> Any:
    """The JSON body of a successful response; an `APIError` for any error status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 and not (response.status_code == 502 and _is_run_result(body)):
        raise api_error(response.status_code, body, response.text)
    return body


def _is_run_result(body: Any) -> bool:
    return isinstance(body, dict) and "channel_id" in body and body.get("status") == "failed"


def run_result(body: dict[str, Any]) -> Result:
    """`POST /v1/ai`'s answer; a failed run raises `RequestFailed`."""
    if body.get("status") == "failed":
        error = body.get("error") or {}
        raise RequestFailed(error.get("code", "failed"), error.get("message", ""), channel_id=body.get("channel_id"))
    return Result.from_json(body)


def accepted(body: dict[str, Any]) -> Accepted:
    return Accepted.from_json(body)


def result_from_event(channel_id: str, event: ChannelEvent) -> Result:
    """The `Result` a terminal channel event stands for (raises `RequestFailed` for an error event)."""
    if event.type == "error":
        raise RequestFailed(event.get("code", "failed"), event.get("message", ""), channel_id=channel_id)
    return Result(
        channel_id=channel_id,
        request_id=channel_id,
        status="completed",
        data=event.data,
        meta=event.get("meta"),
        raw=dict(event.fields),
    )


def events_path(channel_id: str) -> str:
    return f"/v1/channels/{channel_id}/events"


def resume_headers(after: int) -> dict[str, str]:
    return {"Last-Event-ID": str(after), "Accept": "text/event-stream"}


def backoff(attempt: int) -> float:
    return min(5.0, 0.25 * 2**attempt)


class translate_errors:  # lower case: it reads as a function, `with translate_errors():`
    """httpx's transport exceptions become the SDK's `TransportError`, once, at the boundary (sync or async)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, httpx.TransportError):
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)
