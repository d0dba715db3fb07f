"""A channel's events written to a WebSocket as frames built once, straight to the connection's transport.

Through ASGI, every event costs each subscriber a `send` through uvicorn's WebSocket protocol: framing in Python
(`websockets`), then one socket write per frame. But a server's frames are not masked, so an event's frame is the
same bytes for every subscriber of its channel: `frame_of` builds it once, and a subscriber's batch of events goes
out in one write (docs/performance.md: the fan-out figures).

It applies where it is exact: under uvicorn's `websockets-sansio` protocol (what `sluice serve` runs, see
`SERVER_OPTIONS`), on a connection that negotiated no extension (`SERVER_OPTIONS` turns permessage-deflate off:
compressing each small delta once per subscriber costs more CPU than it saves bandwidth), while it is open. It keeps
uvicorn's backpressure (it waits while the transport is paused). Anywhere else `DirectFrames.of` gives None and the
caller sends through ASGI as before. `tests/api/test_wsframes.py` fails if `sluice serve`'s setup stops getting the
direct path, e.g. after a uvicorn upgrade that renames what this reads.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from sluice.events import WireEvent

# How `sluice serve` (and the tests' servers) run uvicorn: the protocol this module writes to, and no compression.
SERVER_OPTIONS: dict[str, Any] = {"ws": "websockets-sansio", "ws_per_message_deflate": False}


class DirectFrames:
    """Writes events as frames to one connection's transport, bypassing per-frame ASGI sends."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @classmethod
    def of(cls, websocket: WebSocket) -> DirectFrames | None:
        """The direct writer of an accepted connection, or None where frames must go through ASGI."""
        protocol = getattr(websocket._send, "__self__", None)  # uvicorn's bound `send`, when nothing wraps it
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
            return None
        return cls(protocol)

    async def write(self, events: list[WireEvent]) -> None:
        """Send `events` in one write; WebSocketDisconnect if the connection is closing or gone."""
        protocol = self._protocol
        if not protocol.writable.is_set():
            await protocol.writable.wait()  # the client reads slower than we write: uvicorn paused the transport
        if protocol.disconnected or protocol.close_sent:
            raise WebSocketDisconnect(1006)
        if len(events) == 1:
            protocol.transport.write(frame_of(events[0].data))
        else:
            protocol.transport.write(b"".join([frame_of(event.data) for event in events]))


@lru_cache(maxsize=4096)
def frame_of(text: str) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2) carrying `text`. Cached: every subscriber of a channel sends
    the same event text object, so the frame is built once per event, not once per subscriber."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload
