"""A lean asyncio load generator for OpenAI-shaped endpoints: p50/p90/p99, requests/s and errors, as JSON.

    .venv/bin/python bench/loadgen.py URL [--concurrency 64] [--requests 2000] [--duration 20] [--stream]
                                          [--model NAME] [--key KEY]

`concurrency` workers each keep one HTTP/1.1 keep-alive connection and send the same request back to back, until
`requests` have been sent or `duration` seconds have passed (whichever comes first: every run is bounded). Latency is
from the first byte sent to the last byte of the response; with `--stream`, `ttft` is to the first chunk carrying
non-empty `content` or a tool call's non-empty `arguments` (the role-only first chunk does not count, nor a tool
call's first piece that only names it) — or, for the agent APIs, a Messages `text_delta`'s `text` or a Responses
`output_text.delta`'s `delta`. Only 127.0.0.1 targets are accepted.

It speaks raw HTTP/1.1 over asyncio streams (uvloop when installed) rather than through httpx or aiohttp, because
the client shares two cores with the servers it measures: every microsecond it spends is taken from them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_CONTENT = re.compile(rb'"(?:content|arguments|text|delta)":\s*"[^"]')


@dataclass
class Samples:
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_examples) < 3:
            self.error_examples.append(message[:300])


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99)}


class Connection:
    """One keep-alive HTTP/1.1 connection that sends one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, float | None, bytes]:
        """Send `raw`; (status, seconds to the first content chunk or None, body when not chunked)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        reader, writer = self.reader, self.writer
        assert reader is not None
        started = time.perf_counter()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        first_content: float | None = None
        body = b""
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                if first_content is None and _CONTENT.search(data):
                    first_content = time.perf_counter() - started
                if status >= 400 and len(body) < 1000:
                    body += data
        else:
            match = re.search(rb"content-length:\s*(\d+)", lower)
            body = await reader.readexactly(int(match.group(1))) if match else await reader.read()
        if b"connection: close" in lower:  # the server ends the connection after this response
            await self.close()
        return status, first_content, body


def encode_request(url: str, body: dict[str, Any], key: str | None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("the load generator only targets 127.0.0.1")
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Accept: */*",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    return parts.hostname, parts.port or 80, ("\r\n".join(headers) + "\r\n\r\n").encode() + payload


async def run_load(
    url: str,
    body: dict[str, Any],
    *,
    concurrency: int,
    requests: int,
    duration: float,
    key: str | None = None,
    warmup: int = 0,
    rate: float | None = None,
) -> dict[str, Any]:
    """Send `requests` (at most, within `duration` s) from `concurrency` connections; the summary as a dict.

    Without `rate` the load is a closed loop: each connection sends its next request as soon as the last one is
    answered, so the target runs flat out and latency is mostly queueing (Little's law: concurrency / throughput).
    With `rate` (requests/s over all connections) the requests are paced, an open loop below saturation: latency
    is then the time a request takes, not the time it waits behind the others.
    """
    host, port, raw = encode_request(url, body, key)
    samples = Samples()
    budget = [requests]
    deadline = time.perf_counter() + duration
    connections = [Connection(host, port) for _ in range(concurrency)]

    async def one(connection: Connection, record: bool) -> None:
        started = time.perf_counter()
        try:
            status, ttft, answer = await connection.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await connection.close()
            if record:
                samples.error(f"{type(exc).__name__}: {exc}")
            return
        if not record:
            return
        if status >= 400:
            samples.error(f"HTTP {status}: {answer[:200]!r}")
            return
        samples.latency_ms.append((time.perf_counter() - started) * 1000)
        if ttft is not None:
            samples.ttft_ms.append(ttft * 1000)

    async def worker(connection: Connection, index: int) -> None:
        interval = concurrency / rate if rate else 0.0
        next_at = time.perf_counter() + interval * index / concurrency  # spread the connections' first requests
        while budget[0] > 0 and time.perf_counter() < deadline:
            if interval:
                await asyncio.sleep(max(next_at - time.perf_counter(), 0.0))
                next_at += interval
            budget[0] -= 1
            await one(connection, record=True)

    # Warm-up: open every connection and let both ends fill their caches; not measured.
    for _ in range(max(warmup, 1)):
        await asyncio.gather(*(one(c, record=False) for c in connections))
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(worker(c, i) for i, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    done = len(samples.latency_ms)
    return {
        "concurrency": concurrency,
        "rate": rate,
        "requests": done + samples.errors,
        "ok": done,
        "errors": samples.errors,
        "error_examples": samples.error_examples,
        "seconds": round(elapsed, 3),
        "rps": round(done / elapsed, 1) if elapsed else 0.0,
        "latency_ms": percentiles(samples.latency_ms),
        "ttft_ms": percentiles(samples.ttft_ms),
    }


def chat_body(model: str, stream: bool, tools: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "How fast is this gateway?"}],
    }
    if tools:
        body["tools"] = [WEATHER_TOOL]
    return body


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="e.g. http://127.0.0.1:8080/v1/chat/completions")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=None, help="pace to this many requests/s (open loop)")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default="mock")
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    install_uvloop()
    result = asyncio.run(
        run_load(
            args.url,
            chat_body(args.model, args.stream),
            concurrency=args.concurrency,
            requests=args.requests,
            duration=args.duration,
            key=args.key,
            rate=args.rate,
        )
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
