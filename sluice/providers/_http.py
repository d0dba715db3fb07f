"""Outbound HTTP shared by the adapters: the pooled client, one boundary that turns client failures and HTTP error
statuses into `ProviderError`s, and readers for the two streaming framings in use (SSE and NDJSON).

The client is aiohttp: reading a stream of small HTTP chunks (one per SSE event, as providers send them) costs about
half the CPU per chunk it costs with httpx, whose chunked-transfer parsing is pure Python (`bench/provider_overhead.py`
prints both: ~6 µs vs ~12 µs per chunk on the development machine). Only this module imports it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import aiohttp
import orjson

from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamBroken,
)

Client = aiohttp.ClientSession
Response = aiohttp.ClientResponse
DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_ERROR_BODY = 64 * 1024
MAX_LINE = 4 * 1024 * 1024  # one SSE/NDJSON line; Gemini may put a long paragraph in one event

# Reads the provider's own error shape (the parsed body, or None if it was not JSON) into a readable message.
Describe = Callable[[Any], str | None]


def create_client(max_connections: int = 512) -> Client:
    """The one client every adapter shares (create it inside the event loop). Deadlines are enforced per attempt by
    the run loop, so the client only bounds connecting; keep-alive spares a TCP+TLS handshake per request."""
    connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=60, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=DEFAULT_CONNECT_TIMEOUT),
        read_bufsize=MAX_LINE // 2,
        auto_decompress=True,  # a line may take twice the buffer size
    )


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI), `Retry-After: <seconds>` or `Retry-After: <HTTP date>`."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def status_error(provider: str, status: int, headers: Mapping[str, str], detail: str | None) -> ProviderError:
    """The error class an HTTP status means, whatever the provider (DESIGN.md §6)."""
    message = f"{provider} answered HTTP {status}" + (f": {detail}" if detail else "")
    retry_after = parse_retry_after(headers)
    if status == 429:
        return RateLimited(message, status_code=status, retry_after=retry_after)
    if status in (401, 403):
        return AuthenticationFailed(message, status_code=status)
    if status == 404:
        return ModelNotFound(message, status_code=status)
    if status == 408:
        return ProviderTimeout(message, status_code=status)
    if status in (400, 413, 422):
        return InvalidRequest(message, status_code=status)
    if status >= 500:  # includes Anthropic's 529 overloaded
        return ProviderUnavailable(message, status_code=status, retry_after=retry_after)
    return ProviderError(message, status_code=status)


@asynccontextmanager
async def open_stream(
    client: Client,
    provider: str,
    url: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str],
    describe: Describe,
    connect_timeout: float | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[Response]:
    """POST `body` and hold the streaming response open; every failure leaves as a `ProviderError`."""
    connect = connect_timeout or DEFAULT_CONNECT_TIMEOUT
    timeout = _connect_timeout(connect)
    started = False
    try:
        async with client.post(
            url,
            data=orjson.dumps(body),
            params=params,
            timeout=timeout,
            headers={"content-type": "application/json", **headers},
        ) as response:
            started = True
            if response.status >= 400:
                raw = await _read_capped(response)
                raise status_error(provider, response.status, response.headers, describe(_json_or_none(raw)))
            yield response
    except aiohttp.ConnectionTimeoutError as exc:
        raise ProviderTimeout(f"{provider}: no connection within {connect:g}s") from exc
    except aiohttp.ClientConnectorError as exc:
        raise ProviderUnavailable(f"{provider}: cannot connect ({exc.os_error.strerror or exc})") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        if started:
            raise StreamBroken(f"{provider}: the stream was cut ({_reason(exc)})") from exc
        raise ProviderUnavailable(f"{provider}: the connection closed before a response ({_reason(exc)})") from exc
    except aiohttp.ServerTimeoutError as exc:
        raise ProviderTimeout(f"{provider}: {_reason(exc)}") from exc
    except aiohttp.ClientError as exc:
        raise ProviderUnavailable(f"{provider}: {type(exc).__name__}: {_reason(exc)}") from exc


@cache
def _connect_timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=None)  # immutable: one per value


async def sse_events(response: Response) -> AsyncIterator[tuple[str, str]]:
    """(event name, data) per Server-Sent Event; the name is "message" when the server sends none."""
    event, data = "", list[str]()
    try:
        async for raw in response.content:
            line = raw.rstrip(b"\r\n")
            if not line:
                if data:
                    yield event or "message", "\n".join(data)
                event, data = "", []
            elif line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" ").decode())
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
    except ValueError as exc:  # not UTF-8, or a line longer than MAX_LINE
        raise StreamBroken(f"unreadable stream: {exc}") from exc
    if data:
        yield event or "message", "\n".join(data)


async def sse_batches(response: Response) -> AsyncIterator[list[tuple[str, str]]]:
    """Like `sse_events`, but the events of one network read come together, as a list.

    A provider ahead of its reader (a fast server, or a gateway under load) has several events per read; handing them
    over at once lets the adapter turn them into one chunk, and the run into one channel event, instead of paying
    the per-event costs (deadline timer, event encoding, broker append, subscriber wake-up) for each token. A
    provider paced slower than the gateway reads still gives one event per read, so nothing is delayed.
    """
    event, data = "", list[str]()
    pending = b""
    try:
        async for received in response.content.iter_any():
            lines = (pending + received).split(b"\n")
            pending = lines.pop()  # an incomplete last line waits for the next read
            if len(pending) > MAX_LINE:
                raise ValueError(f"a line longer than {MAX_LINE} bytes")
            batch = []
            for raw in lines:
                line = raw.rstrip(b"\r")
                if not line:
                    if data:
                        batch.append((event or "message", "\n".join(data)))
                    event, data = "", []
                elif line.startswith(b"data:"):
                    data.append(line[5:].removeprefix(b" ").decode())
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
            if batch:
                yield batch
    except ValueError as exc:  # not UTF-8, or a line longer than MAX_LINE
        raise StreamBroken(f"unreadable stream: {exc}") from exc
    if pending.strip().startswith(b"data:"):
        data.append(pending.strip()[5:].removeprefix(b" ").decode(errors="replace"))
    if data:
        yield [(event or "message", "\n".join(data))]


async def ndjson_lines(response: Response) -> AsyncIterator[str]:
    try:
        async for raw in response.content:
            line = raw.strip()
            if line:
                yield line.decode()
    except ValueError as exc:
        raise StreamBroken(f"unreadable stream: {exc}") from exc


async def drain(rest: AsyncIterator[Any]) -> None:
    """Read what follows the end marker, so the connection is returned to the pool instead of being dropped."""
    async for _ in rest:
        pass


def parse_chunk(provider: str, data: str | bytes) -> Any:
    """A streamed JSON chunk; a malformed one breaks the stream (it may have lost text)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StreamBroken(f"{provider}: malformed chunk in the stream ({data[:80]!r})") from exc


def merge(body: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` merged into `body`, nested mappings merged key by key (e.g. Gemini's `generationConfig`)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(body.get(key), dict):
            merge(body[key], value)
        else:
            body[key] = value
    return body


def bearer(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


async def _read_capped(response: Response) -> bytes:
    chunks = bytearray()
    async for part in response.content.iter_chunked(16 * 1024):
        chunks += part
        if len(chunks) > MAX_ERROR_BODY:
            break
    return bytes(chunks[:MAX_ERROR_BODY])


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
