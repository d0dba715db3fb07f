"""A fast OpenAI-compatible mock upstream for benchmarks: `POST …/chat/completions`, streamed or not, with or without
tools, and `POST …/embeddings`.

    .venv/bin/python bench/mock_upstream.py [--port 0] [--chunks 20] [--pace-ms 0] [--ttft-ms 0] [--dimensions 1536]

Prints its base URL (`http://127.0.0.1:PORT/v1`) on the first line of stdout, then serves until killed.

It is a bare asyncio protocol on uvloop, not a framework, so that it costs as little CPU as possible: the benchmarks
compare a direct call with a call through a gateway on the same two cores, and a slow mock would hide the gateway's
cost in its own. It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, chunked SSE responses) for the
`openai` SDK, aiohttp, httpx, LiteLLM and the load generator. The answer does not depend on the prompt.

- `--chunks N`: the reply is N content chunks (one word each), streamed as N `chat.completion.chunk` events, after a
  first role-only chunk, a finish chunk and a usage chunk (when `stream_options.include_usage` asks for it).
- `--pace-ms`: the pause between content chunks; `--ttft-ms`: the pause before the first one. Both 0 (the default)
  is the zero-delay mode: the whole stream is written at once.
- `--hold`: streams wait (after the role chunk) until someone calls `POST /_release`, so a benchmark can connect all
  its subscribers to idle channels first (the fan-out scenario).
- A chat request with `tools` is answered with a call of its first tool instead of text: streamed, a first
  `tool_calls` delta with the call's id and name, then its arguments (a JSON object) in N pieces (`--chunks`), then
  `finish_reason: tool_calls`; not streamed, one `tool_calls` message. The tool's name does not change the bytes
  (always `get_weather`), so they are rendered once too.
- `POST …/embeddings`: OpenAI's embeddings answer, one vector per input (a string or a list of strings) of
  `dimensions` floats (the request's, else `--dimensions`), as floats or, with `encoding_format: base64`, as the
  base64 of little-endian float32 bytes. Rendered once per (inputs, dimensions, encoding) and kept.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import struct
import sys
import time

import orjson

_WORDS = [f"w{i % 100} " for i in range(10_000)]


class Replies:
    """Every byte the mock sends, rendered once at start: the hot loop only writes bytes."""

    def __init__(self, chunks: int) -> None:
        text = "".join(_WORDS[:chunks])
        usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
        body = orjson.dumps(
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "mock",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            }
        )
        self.complete = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": "mock"}

        def event(choices: list[dict], **extra: object) -> bytes:
            return _chunked(b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n")

        self.role = event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        self.deltas = [
            event([{"index": 0, "delta": {"content": word}, "finish_reason": None}]) for word in _WORDS[:chunks]
        ]
        self.finish = event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        self.usage = event([], usage=usage)
        self.done = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        # Tools: a call of `get_weather` whose arguments stream in `chunks` pieces.
        arguments = orjson.dumps({"city": "".join(_WORDS[:chunks]).strip(), "unit": "celsius"}).decode()
        size = -(-len(arguments) // max(chunks, 1))
        pieces = [arguments[i : i + size] for i in range(0, len(arguments), size)]
        call = {"index": 0, "id": "call_mock", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
        self.tool_first = event([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}])
        self.tool_deltas = [
            event(
                [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]},
                        "finish_reason": None,
                    }
                ]
            )
            for p in pieces
        ]
        self.tool_finish = event([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
        whole_call = {
            "id": "call_mock",
            "type": "function",
            "function": {"name": "get_weather", "arguments": arguments},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [whole_call]}
        tool_body = orjson.dumps(
            {
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "mock",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}],
                "usage": usage,
            }
        )
        self.tool_complete = _response(b"application/json", tool_body)
        self.embeddings: dict[tuple[int, int, bool], bytes] = {}
        self.released = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        self.not_found = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

    def embedding(self, count: int, dimensions: int, packed: bool) -> bytes:
        """The embeddings answer for `count` inputs (rendered on first use, then kept)."""
        key = (count, dimensions, packed)
        found = self.embeddings.get(key)
        if found is None:
            data = []
            for index in range(count):
                vector = [round(((index * 31 + j * 7) % 1000) / 1000 - 0.5, 6) for j in range(dimensions)]
                encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if packed else vector
                data.append({"object": "embedding", "index": index, "embedding": encoded})
            tokens = 8 * count
            body = {
                "object": "list",
                "data": data,
                "model": "mock",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
            found = self.embeddings[key] = _response(b"application/json", orjson.dumps(body))
        return found


def _response(content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: " + str(len(body)).encode()
        + b"\r\n\r\n" + body
    )  # fmt: skip


def _content_length(head: bytes) -> int:
    marker = head.find(b"content-length:")
    if marker < 0:
        return 0
    line_end = head.find(b"\r\n", marker)
    return int(head[marker + 15 : line_end if line_end > 0 else len(head)])


def _chunked(payload: bytes) -> bytes:
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n"


class MockProtocol(asyncio.Protocol):
    def __init__(
        self, replies: Replies, pace: float, ttft: float, hold: asyncio.Event | None = None, dimensions: int = 1536
    ) -> None:
        self.replies, self.pace, self.ttft, self.hold = replies, pace, ttft, hold
        self.dimensions = dimensions
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy: asyncio.Task[None] | None = None  # a paced stream being written; requests wait behind it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy is not None:
            self.busy.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.busy is None:
            self._serve_buffered()

    def _serve_buffered(self) -> None:
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = _content_length(head)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"post /_release") and self.hold is not None:
                self.hold.set()
                self.transport.write(self.replies.released)
                continue
            line = head[: head.find(b"\r\n")]
            if head.startswith(b"post") and b"/embeddings" in line:
                request = orjson.loads(body) if body else {}
                texts = request.get("input")
                count = 1 if isinstance(texts, str) else len(texts or ())
                dimensions = int(request.get("dimensions") or self.dimensions)
                packed = request.get("encoding_format") == "base64"
                self.transport.write(self.replies.embedding(count, dimensions, packed))
                continue
            if not head.startswith(b"post") or b"/chat/completions" not in line:
                self.transport.write(self.replies.not_found)
                continue
            request = orjson.loads(body) if body else {}
            tools = bool(request.get("tools"))
            if not request.get("stream"):
                self.transport.write(self.replies.tool_complete if tools else self.replies.complete)
                continue
            usage = bool((request.get("stream_options") or {}).get("include_usage"))
            if self.pace or self.ttft or (self.hold is not None and not self.hold.is_set()):
                self.busy = asyncio.ensure_future(self._paced(usage, tools))
                return
            replies = self.replies
            if tools:
                parts = [
                    replies.stream_head,
                    replies.role,
                    replies.tool_first,
                    *replies.tool_deltas,
                    replies.tool_finish,
                ]
            else:
                parts = [replies.stream_head, replies.role, *replies.deltas, replies.finish]
            if usage:
                parts.append(replies.usage)
            parts.append(replies.done)
            self.transport.write(b"".join(parts))

    async def _paced(self, usage: bool, tools: bool = False) -> None:
        replies, transport = self.replies, self.transport
        assert transport is not None
        transport.write(replies.stream_head + replies.role + (replies.tool_first if tools else b""))
        if self.hold is not None:
            await self.hold.wait()
        if self.ttft:
            await asyncio.sleep(self.ttft)
        for index, delta in enumerate(replies.tool_deltas if tools else replies.deltas):
            if index and self.pace:
                await asyncio.sleep(self.pace)
            transport.write(delta)
        finish = replies.tool_finish if tools else replies.finish
        transport.write(finish + (replies.usage if usage else b"") + replies.done)
        self.busy = None
        self._serve_buffered()


async def serve(port: int, chunks: int, pace_ms: float, ttft_ms: float, hold: bool, dimensions: int = 1536) -> None:
    replies = Replies(chunks)
    loop = asyncio.get_running_loop()
    released = asyncio.Event() if hold else None
    server = await loop.create_server(
        lambda: MockProtocol(replies, pace_ms / 1000, ttft_ms / 1000, released, dimensions),
        "127.0.0.1",
        port,
        backlog=4096,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{bound}/v1", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--pace-ms", type=float, default=0.0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--hold", action="store_true", help="streams wait for POST /_release")
    parser.add_argument("--dimensions", type=int, default=1536, help="of an embedding the request gives no size for")
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - Windows
        runner = asyncio.run
    try:
        runner(serve(args.port, args.chunks, args.pace_ms, args.ttft_ms, args.hold, args.dimensions))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
