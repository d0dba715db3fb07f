"""A fake provider on loopback: a small HTTP/1.1 server (keep-alive, chunked streaming) that answers in one
provider's wire format and does what the next queued `Script` says.

Written on asyncio streams rather than an ASGI server so that a fault is exactly the bytes a broken provider sends:
a connection closed mid-body, a stalled stream, a malformed chunk, a late first byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.testing.protocols import PROTOCOLS, Protocol
from sluice.testing.protocols.base import tokens_of
from sluice.testing.script import Script

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
STALL_LIMIT = 300.0  # a stalled stream is closed after this long even if the client never leaves


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Hangup:
    """A client that closed its connection while it waited for (more of) its answer: a cancelled call."""

    path: str
    at: float  # time.monotonic() when the fake noticed
    chunks: int  # text chunks it had been sent


class FakeProvider:
    """`async with FakeProvider("openai") as fake:` … `fake.base_url`, `fake.script(Script(status=429))`,
    `fake.requests`, `fake.hangups` (clients that closed the connection before their answer was complete, as a
    cancelled call does: `await fake.wait_hangup()`). Also scriptable over HTTP: `POST /_fake/script` with a script
    or a list of them, `GET /_fake/requests`, `GET /_fake/hangups`, `POST /_fake/reset`."""

    def __init__(self, kind: str, *, host: str = "127.0.0.1", port: int = 0, text: str | None = None) -> None:
        if kind not in PROTOCOLS:
            raise ValueError(f"unknown fake kind {kind!r}; one of {', '.join(PROTOCOLS)}")
        self.kind = kind
        self.protocol: Protocol = PROTOCOLS[kind]()
        self.host, self.port = host, port
        self.text = text or f"Hello from the fake {kind} provider. It streams this reply in small pieces."
        self.requests: list[Received] = []
        self.hangups: list[Hangup] = []  # noticed during a pause (`first_byte_delay`, `chunk_delay`) or a stall
        self._hung_up = asyncio.Event()
        self._scripts: deque[Script] = deque()
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to put in the provider's `base_url` (OpenAI-style servers take the `/v1` prefix there)."""
        return self.url + "/v1" if self.kind == "openai" else self.url

    def script(self, *scripts: Script) -> None:
        """Queue behaviours for the next requests, in order; after them, requests succeed."""
        self._scripts.extend(scripts)

    def reset(self) -> None:
        self._scripts.clear()
        self.requests.clear()
        self.hangups.clear()

    async def wait_hangup(self, count: int = 1, within: float = 5.0) -> Hangup:
        """The `count`-th hangup, once it has happened (TimeoutError after `within` seconds)."""
        async with asyncio.timeout(within):
            while len(self.hangups) < count:
                self._hung_up.clear()
                await self._hung_up.wait()
        return self.hangups[count - 1]

    async def start(self) -> FakeProvider:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            handlers = list(self._connections.items())
            for writer, task in handlers:
                writer.transport.abort()
                task.cancel()
            await asyncio.gather(*(task for _, task in handlers), return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeProvider:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections[writer] = asyncio.current_task()  # type: ignore[assignment]
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only `aclose` cancels a handler. Ending normally keeps asyncio's stream callback from logging
            # the cancellation as an "unhandled exception in client_connected_cb".
            pass
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is done."""
        line = await reader.readline()
        if not line:
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        path = path.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return await self._control(writer, method, path, body)
        self.requests.append(Received(method, path, headers, body))
        routed = self.protocol.matches(path) or self.protocol.embeds(path) or self.protocol.counts(path)
        if not routed or not isinstance(body, dict):
            await _send(writer, 404, self.protocol.error(404, f"no route {method} {path} on this fake"), {})
            return True
        script = self._scripts.popleft() if self._scripts else Script()
        return await self._answer(reader, writer, script, path, body)

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        script: Script,
        path: str,
        body: dict[str, Any],
    ) -> bool:
        if script.first_byte_delay and await self._paused(reader, script.first_byte_delay, path, 0):
            return False
        headers = dict(script.headers)
        if script.retry_after is not None:
            headers["retry-after"] = f"{script.retry_after:g}"
        if script.status >= 400:
            error = (
                script.body
                if script.body is not None
                else self.protocol.error(script.status, f"scripted failure: HTTP {script.status}")
            )
            await _send(writer, script.status, error, headers)
            return True
        if self.protocol.embeds(path):
            await _send(writer, 200, self.protocol.embeddings(path, body), headers)
            return True
        if self.protocol.counts(path):
            await _send(writer, 200, self.protocol.count_tokens(body), headers)
            return True
        model = self.protocol.model(path, body)
        continuing = self.protocol.continuing(body)
        if continuing is not None and not script.tool_calls:
            script = script.continuing(self.text, *continuing)
        answer = script.answer(self.text)
        tokens_in = tokens_of(body)
        if not self.protocol.streams(path, body):
            await _send(writer, 200, self.protocol.complete(model, answer, tokens_in, body), headers)
            return True
        before, text, after = self.protocol.frames(model, answer, tokens_in, body)
        writer.write(
            _head(
                200,
                {
                    "content-type": self.protocol.content_type,
                    "cache-control": "no-cache",
                    "transfer-encoding": "chunked",
                    **headers,
                },
            )
        )
        for frame in before:
            writer.write(_chunk(frame))
        cut_after = script.cut_index(answer)
        for index, frame in enumerate(text):
            if index == cut_after:
                await writer.drain()
                return False  # closed without the last chunk: the body is incomplete
            if index == script.stall_after:
                await writer.drain()
                await self._paused(reader, STALL_LIMIT, path, index)  # until the client gives up and closes
                return False
            if index == script.error_after:
                writer.write(_chunk(self.protocol.stream_error()) + b"0\r\n\r\n")
                await writer.drain()
                return True
            if index and script.chunk_delay:
                await writer.drain()
                if await self._paused(reader, script.chunk_delay, path, index):
                    return False
            writer.write(_chunk(self.protocol.malformed if index == script.malformed_at else frame))
        if cut_after is not None and cut_after >= len(text):
            await writer.drain()
            return False
        for frame in after:
            writer.write(_chunk(frame))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _paused(self, reader: asyncio.StreamReader, seconds: float, path: str, chunks: int) -> bool:
        """Wait `seconds`, or until the client closes its connection: True (and a `Hangup` noted) if it did.

        While it waits for its answer a client sends nothing, so a read that returns means it left. The read is
        cancelled after each pause (no byte taken): once the answer is complete, the next request may follow."""
        read = asyncio.ensure_future(reader.read(1))
        try:
            done, _ = await asyncio.wait({read}, timeout=seconds)
        finally:
            if not read.done():
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read  # ended, so the reader takes its next read
        if not done:
            return False
        self.hangups.append(Hangup(path, time.monotonic(), chunks))
        self._hung_up.set()
        return True

    async def _control(self, writer: asyncio.StreamWriter, method: str, path: str, body: Any) -> bool:
        if path == "/_fake/script" and method == "POST":
            try:
                records = body if isinstance(body, list) else [body]
                self.script(*(Script.from_dict(r) for r in records))
            except (TypeError, ValueError) as exc:
                await _send(writer, 400, {"error": {"code": "bad_script", "message": str(exc)}}, {})
                return True
            await _send(writer, 200, {"queued": len(self._scripts)}, {})
        elif path == "/_fake/requests" and method == "GET":
            await _send(writer, 200, [r.__dict__ for r in self.requests], {})
        elif path == "/_fake/hangups" and method == "GET":
            await _send(writer, 200, [h.__dict__ for h in self.hangups], {})
        elif path == "/_fake/reset" and method == "POST":
            self.reset()
            await _send(writer, 200, {"reset": True}, {})
        else:
            await _send(writer, 404, {"error": {"code": "not_found", "message": f"no control route {path}"}}, {})
        return True


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _send(writer: asyncio.StreamWriter, status: int, body: Any, headers: dict[str, str]) -> None:
    payload = body.encode() if isinstance(body, str) else orjson.dumps(body)
    writer.write(
        _head(status, {"content-type": "application/json", "content-length": str(len(payload)), **headers}) + payload
    )
    await writer.drain()
