"""Phoenix Channels protocol v2 (JSON serializer), sans I/O: frames in, frames out.

Every frame is a JSON array `[join_ref, ref, topic, event, payload]`. The client picks `ref` and the server echoes it
in its `phx_reply`; `join_ref` is the ref of the `phx_join` that opened the topic, and the server stamps it on every
push so the client can drop pushes meant for an older join of the same topic. No Python library implements the
server side of this protocol, and it is small, so it lives here, free of sockets (tested without any).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

VSN = "2.0.0"
PHOENIX_TOPIC = "phoenix"  # the socket's own topic: heartbeats
JOIN, LEAVE, CLOSE, REPLY, HEARTBEAT = "phx_join", "phx_leave", "phx_close", "phx_reply", "heartbeat"
# phoenix.js (>= 1.8) may send its `authToken` as a WebSocket subprotocol instead of a query parameter.
AUTH_TOKEN_PREFIX = "base64url.bearer.phx."
SUBPROTOCOL = "phoenix"


class ProtocolError(ValueError):
    """A frame that is not a v2 JSON frame; the connection cannot go on (the server closes it)."""


@dataclass(frozen=True, slots=True)
class Frame:
    join_ref: str | None
    ref: str | None
    topic: str
    event: str
    payload: Any

    def encode(self) -> str:
        return orjson.dumps([self.join_ref, self.ref, self.topic, self.event, self.payload]).decode()


def decode(text: str | bytes) -> Frame:
    try:
        parts = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("a frame is not valid JSON") from exc
    if not isinstance(parts, list) or len(parts) != 5:
        raise ProtocolError("a frame must be the array [join_ref, ref, topic, event, payload] (vsn 2.0.0)")
    join_ref, ref, topic, event, payload = parts
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("a frame's topic and event must be strings")
    return Frame(join_ref=_ref(join_ref), ref=_ref(ref), topic=topic, event=event, payload=payload)


def _ref(value: Any) -> str | None:
    # phoenix.js sends refs as strings; other clients send numbers. Echo them back as the strings they stand for.
    return None if value is None else str(value)


def reply(to: Frame, status: str, response: dict[str, Any] | None = None) -> Frame:
    """The server's answer to a client push (join, leave, heartbeat, or an app event)."""
    return Frame(
        join_ref=to.join_ref,
        ref=to.ref,
        topic=to.topic,
        event=REPLY,
        payload={"status": status, "response": response or {}},
    )


def push(join_ref: str | None, topic: str, event: str, payload: dict[str, Any]) -> Frame:
    """A server-initiated message on a joined topic (ref is null: nobody answers it)."""
    return Frame(join_ref=join_ref, ref=None, topic=topic, event=event, payload=payload)


def close(join_ref: str | None, topic: str) -> Frame:
    """Tells the client the topic is closed for good: phoenix.js removes the channel and does not rejoin."""
    return Frame(join_ref=join_ref, ref=join_ref, topic=topic, event=CLOSE, payload={})


def token_from_subprotocols(offered: list[str]) -> str | None:
    """The `authToken` phoenix.js passes as `Sec-WebSocket-Protocol: phoenix, base64url.bearer.phx.<b64>`."""
    for protocol in offered:
        if protocol.startswith(AUTH_TOKEN_PREFIX):
            encoded = protocol[len(AUTH_TOKEN_PREFIX) :]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
    return None
