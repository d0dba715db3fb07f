"""A minimal Server-Sent Events subscriber for benchmarks, the twin of wsclient.py: GET a channel's `events_url`,
count events, note the first delta and the end.

A bare asyncio protocol (no HTTP library) so that thousands of subscribers cost the measuring process little: it
reads the chunked body the gateway streams and counts each event (`data:` line) in it.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

_DELTA = b'"type":"delta"'
_TERMINALS = (b'"type":"response"', b'"type":"error"')


class SseSubscriber(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.started = False  # the response head was read
        self.frames = 0  # events received (`data:` lines; heartbeats are comments and not counted)
        self.first_delta: float | None = None
        self.terminal: float | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self._pending = b""  # an event's text cut by a chunk or read boundary

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before the response"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.started:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(ConnectionError(bytes(self.buffer[:200]).decode("latin-1")))
                return
            del self.buffer[: end + 4]
            self.started = True
            self.opened.set_result(None)
        self._chunks()

    def _chunks(self) -> None:
        """Chunked transfer coding: `<size hex>\\r\\n<data>\\r\\n`, a size of 0 ends the body."""
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return
            chunk = bytes(buffer[line_end + 2 : line_end + 2 + size])
            del buffer[: line_end + 2 + size + 2]
            if size == 0:
                self.close()
                return
            self._events(chunk)

    def _events(self, chunk: bytes) -> None:
        text = self._pending + chunk
        blocks = text.split(b"\n\n")
        self._pending = blocks.pop()  # the part after the last complete event
        for block in blocks:
            for line in block.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                self.frames += 1
                if self.first_delta is None and _DELTA in line:
                    self.first_delta = time.perf_counter()
                if self.terminal is None and any(marker in line for marker in _TERMINALS):
                    self.terminal = time.perf_counter()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def subscribe_sse(url: str) -> SseSubscriber:
    """Open a subscriber on an `http://127.0.0.1…/v1/channels/{id}/events?token=…` URL and wait for the response."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("benchmarks only connect to 127.0.0.1")
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(SseSubscriber, parts.hostname, parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    assert subscriber.transport is not None
    subscriber.transport.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await subscriber.opened
    return subscriber
