"""`AsyncSluiceClient`: the asyncio twin of `SluiceClient` (for FastAPI, aiohttp… backends)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from sluice.client import _shared as shared
from sluice.client._body import Messages, Schema, request_body
from sluice.client._errors import TransportError
from sluice.client._models import Accepted, ChannelEvent, RequestInfo, Result
from sluice.client._sse import adecode_lines


class AsyncSluiceClient:
    """A Sluice gateway, called with an API key.

    async with AsyncSluiceClient("http://127.0.0.1:8080", api_key="sk_sluice_…") as sluice:
        accepted = await sluice.submit("demo", "Hello!")
        async for event in sluice.stream(accepted.channel_id):
            print(event.type, event.fields)
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_reconnects: int = 5,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = shared.Config.resolve(base_url, api_key, timeout, max_reconnects)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None

    async def run(
        self,
        workflow: str,
        messages: Messages,
        *,
        schema: Schema = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> Result:
        """`POST /v1/ai`: run a workflow and wait for its answer. A failed run raises `RequestFailed`."""
        body = request_body(workflow, messages, schema=schema, extra=extra)
        response = await self._request(
            "POST",
            "/v1/ai",
            json=body,
            headers=shared.idempotency(idempotency_key),
            timeout=httpx.Timeout(self._config.timeout, read=None),
        )
        return shared.run_result(shared.read_json(response))

    async def submit(
        self,
        workflow: str,
        messages: Messages,
        *,
        schema: Schema = None,
        delivery_method: str | None = None,
        webhook_url: str | None = None,
        events: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> Accepted:
        """`POST /v1/ai/async`: queue a request; follow it with `stream()` or hand `browser_params()` to a page."""
        body = shared.submit_body(
            workflow,
            messages,
            schema,
            delivery_method=delivery_method,
            webhook_url=webhook_url,
            events=events,
            metadata=metadata,
            extra=extra,
        )
        response = await self._request("POST", "/v1/ai/async", json=body, headers=shared.idempotency(idempotency_key))
        return shared.accepted(shared.read_json(response))

    async def get_request(self, request_id: str) -> RequestInfo:
        """`GET /v1/requests/{id}` (a request id or a channel id)."""
        return RequestInfo.from_json(shared.read_json(await self._request("GET", f"/v1/requests/{request_id}")))

    async def cancel(self, request_id: str) -> RequestInfo:
        """`POST /v1/requests/{id}/cancel`: end the request wherever it runs (its provider call is closed) and
        return it as it ended: `cancelled`, with the output streamed so far as `data`; a request that had already
        finished is returned as it is."""
        return RequestInfo.from_json(shared.read_json(await self._request("POST", f"/v1/requests/{request_id}/cancel")))

    async def stream(self, channel_id: str, *, after: int = 0) -> AsyncIterator[ChannelEvent]:
        """The channel's events after `after`, until the terminal one; a broken connection is resumed from the
        last seq received (up to `max_reconnects` times in a row)."""
        last, failures = after, 0
        while True:
            try:
                async with (
                    shared.translate_errors(),
                    self._http.stream(
                        "GET",
                        self._config.base_url + shared.events_path(channel_id),
                        timeout=shared.STREAM_TIMEOUT,
                        headers={**self._config.headers, **shared.resume_headers(last)},
                    ) as response,
                ):
                    if response.status_code == 204:
                        return  # everything up to the terminal event was already received
                    if response.status_code >= 400:
                        await response.aread()
                        shared.read_json(response)
                    async for event in adecode_lines(response.aiter_lines()):
                        if event.seq and event.seq <= last:
                            continue
                        last, failures = max(last, event.seq), 0
                        yield event
                        if event.terminal:
                            return
                broken = TransportError("the stream ended before the terminal event")
            except TransportError as exc:
                broken = exc
            if failures >= self._config.max_reconnects:
                raise broken
            failures += 1
            await asyncio.sleep(shared.backoff(failures))

    async def wait(self, channel_id: str, *, after: int = 0) -> Result:
        """Follow the channel to its end and return the result (`RequestFailed` if it failed)."""
        async for event in self.stream(channel_id, after=after):
            if event.terminal:
                return shared.result_from_event(channel_id, event)
        info = await self.get_request(channel_id)  # the terminal event was seen before `after`: read it from the store
        return shared.run_result(
            {
                "channel_id": info.channel_id,
                "status": info.status,
                "data": info.data,
                "meta": info.meta,
                "error": info.error,
            }
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncSluiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._config.headers, **kwargs.pop("headers", {})}
        with shared.translate_errors():
            return await self._http.request(method, self._config.base_url + path, headers=headers, **kwargs)
