"""A minimal WebSocket subscriber for benchmarks: connect, count text frames, note the first delta and the end.

A bare asyncio protocol (no `websockets` library) so that thousands of subscribers cost the measuring process little:
server frames are not masked, so reading one is a header and a slice. It answers pings and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from urllib.parse import urlsplit

_DELTA = b'"type":"delta"'
_TERMINALS = (b'"type":"response"', b'"type":"error"')


class Subscriber(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.frames = 0  # text frames received (events and heartbeats)
        self.first_delta: float | None = None
        self.terminal: float | None = None
        self.opened = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(self.buffer[:200]).decode("latin-1")))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        offset = 0
        while len(buffer) - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            head = 2
            if length == 126:
                if len(buffer) - offset < 4:
                    break
                length, head = int.from_bytes(buffer[offset + 2 : offset + 4], "big"), 4
            elif length == 127:
                if len(buffer) - offset < 10:
                    break
                length, head = int.from_bytes(buffer[offset + 2 : offset + 10], "big"), 10
            if len(buffer) - offset < head + length:
                break
            payload = bytes(buffer[offset + head : offset + head + length])
            offset += head + length
            if opcode == 1:
                self.frames += 1
                if self.first_delta is None and _DELTA in payload:
                    self.first_delta = time.perf_counter()
                if self.terminal is None and any(marker in payload for marker in _TERMINALS):
                    self.terminal = time.perf_counter()
            elif opcode == 9 and self.transport is not None:  # ping: pong with the same payload (zero mask key)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 8 and self.transport is not None:  # close: echo it, then let the server close TCP
                self.transport.write(b"\x88\x82\0\0\0\0" + (payload[:2] or b"\x03\xe8"))
        del buffer[:offset]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def subscribe(url: str) -> Subscriber:
    """Open a subscriber on a `ws://127.0.0.1…` URL (e.g. a `websocket_url`) and wait for the upgrade."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("benchmarks only connect to 127.0.0.1")
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(Subscriber, parts.hostname, parts.port)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    assert subscriber.transport is not None
    subscriber.transport.write(
        f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await subscriber.opened
    return subscriber
