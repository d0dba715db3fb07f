"""Scenario 10: cancel latency — `POST /v1/requests/{id}/cancel` → the upstream connection closed, and → the terminal
event on the browser's WebSocket; and a chat-completion client hanging up → the upstream connection closed.

    .venv/bin/python bench/cancel.py [--cancels 200] [--json bench/results/cancel.json]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/0]

Two setups, each its own `sluice serve` processes: one instance on the embedded default (SQLite, in-process
broker), and two instances on PostgreSQL + Redis (fresh database and key prefix, dropped afterwards), where the
cancel is sent to the instance that does *not* run the request (found from the job stream's pending entries), so
it travels through Redis to the one holding the provider call. The upstream is `sluice.testing.FakeProvider` in
this process, streaming slowly (a chunk every 20 ms); it notes, on this process's monotonic clock, when each
gateway connection to it closes — the moment the provider call really stopped.

Each cancel, one at a time: submit `POST /v1/ai/async`, follow the channel over the WebSocket until three deltas
arrived (mid-stream), then cancel and time: the API's answer, the upstream close, the `error` event (code
`cancelled`). Each hang-up, one at a time: a streamed chat completion read to its third chunk, then the client
closes its connection; timed to the upstream close. `--skip-cluster` measures the single instance only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway import MASTER_KEY
from loadgen import percentiles
from scale_out import drop_backends, fresh_backends, start, wait_ready

from sluice.testing import FakeProvider, Script

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
TEXT = " ".join(f"word{i}" for i in range(400))  # ~8 s at a chunk every 20 ms: always cancelled mid-stream
PACE = Script(chunk_delay=0.02)
CONFIG = 'providers:\n  fake: {{type: openai, api_key: k, base_url: "{url}"}}\nworkflows:\n  slow: {{chain: [{{provider: fake, model: m, retries: 0}}]}}\n'  # noqa: E501
BODY = {"workflow": "slow", "messages": [{"role": "user", "content": "A long story, please."}]}


class Runner:
    """Which instance runs a request: the pid in the consumer name of the job stream's pending entry (Redis)."""

    def __init__(self, redis_url: str, urls: list[str], pids: list[int]) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
        self.jobs = redis_url.split("key_prefix=")[1] + "{jobs}"
        self.by_pid = dict(zip(pids, urls, strict=True))

    async def other_than_runner(self) -> str:
        async with asyncio.timeout(10):
            while not (pending := await self.redis.xpending_range(self.jobs, "workers", "-", "+", 1)):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        runner = self.by_pid[int(pending[0]["consumer"].split("-")[-2])]
        return next(url for url in self.by_pid.values() if url != runner)

    async def aclose(self) -> None:
        await self.redis.aclose()


async def cancels(
    fake: FakeProvider, urls: list[str], count: int, runner: Runner | None
) -> tuple[dict[str, list[float]], int]:
    timings: dict[str, list[float]] = {"answer_ms": [], "upstream_closed_ms": [], "terminal_event_ms": []}
    errors = 0
    async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:
        for index in range(count):
            fake.script(PACE)
            hangups = len(fake.hangups)
            accepted = (await client.post(f"{urls[0]}/v1/ai/async", json=BODY)).json()
            target = await runner.other_than_runner() if runner is not None else urls[0]
            async with websockets.connect(accepted["websocket_url"]) as ws:
                deltas = 0
                while deltas < 3:
                    deltas += json.loads(await ws.recv())["type"] == "delta"
                asked = time.monotonic()
                answer = await client.post(f"{target}/v1/requests/{accepted['request_id']}/cancel")
                answered = time.monotonic()
                event: dict[str, Any] = {}
                async for frame in ws:
                    event = json.loads(frame)
                    if event["type"] in ("response", "error"):
                        ended = time.monotonic()
                        break
                closed = (await fake.wait_hangup(hangups + 1, within=10)).at
            if answer.status_code != 200 or event.get("code") != "cancelled":
                errors += 1
                continue
            if index == 0:
                continue  # warm-up
            timings["answer_ms"].append((answered - asked) * 1000)
            timings["upstream_closed_ms"].append((closed - asked) * 1000)
            timings["terminal_event_ms"].append((ended - asked) * 1000)
    return timings, errors


async def hangups(fake: FakeProvider, url: str, count: int) -> list[float]:
    closed_ms: list[float] = []
    body = {"model": "slow", "messages": BODY["messages"], "stream": True}
    for index in range(count):
        fake.script(PACE)
        seen = len(fake.hangups)
        async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:  # its own connection, closed below
            async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                lines = response.aiter_lines()
                chunks = 0
                while chunks < 4:  # the role chunk, then three with text
                    chunks += (await anext(lines)).startswith("data: ")
            left = time.monotonic()
        closed = (await fake.wait_hangup(seen + 1, within=10)).at
        if index:
            closed_ms.append((closed - left) * 1000)
    return closed_ms


def summary(name: str, timings: dict[str, list[float]], errors: int) -> dict[str, Any]:
    figures = {key: percentiles(values) for key, values in timings.items()}
    line = ", ".join(f"{key} p50 {f['p50']} / p99 {f['p99']}" for key, f in figures.items())
    print(f"{name}: {len(next(iter(timings.values())))} measured, {errors} errors; {line}", flush=True)
    return {"measured": len(next(iter(timings.values()))), "errors": errors, **figures}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cancels", type=int, default=200)
    parser.add_argument("--hangups", type=int, default=100)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"cancels": args.cancels, "hangups": args.hangups}
    async with FakeProvider("openai", text=TEXT) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            instances = start(1, Path(tmp), None, None, CONFIG.format(url=fake.base_url))
            try:
                await wait_ready(instances[0][0])
                urls = [instances[0][0]]
                timings, errors = await cancels(fake, urls, args.cancels + 1, None)
                results["single"] = summary("one instance, cancel", timings, errors)
                closed = await hangups(fake, urls[0], args.hangups + 1)
                results["single_hangup"] = summary("one instance, client hangs up", {"upstream_closed_ms": closed}, 0)
            finally:
                for _, process in instances:
                    process.terminate()
                    process.wait(10)
        if not args.skip_cluster:
            database_url, redis_url, name = await fresh_backends(args.database_url, args.redis_url)
            with tempfile.TemporaryDirectory() as tmp:
                instances = start(2, Path(tmp), database_url, redis_url, CONFIG.format(url=fake.base_url))
                runner = None
                try:
                    await asyncio.gather(*(wait_ready(url) for url, _ in instances))
                    urls = [url for url, _ in instances]
                    runner = Runner(redis_url, urls, [process.pid for _, process in instances])
                    timings, errors = await cancels(fake, urls, args.cancels + 1, runner)
                    setup = "two instances on Redis, cancel sent to the other"
                    results["two_instances"] = summary(setup, timings, errors)
                finally:
                    if runner is not None:
                        await runner.aclose()
                    for _, process in instances:
                        process.terminate()
                        process.wait(10)
                    await drop_backends(args.database_url, args.redis_url, name, redis_url)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
