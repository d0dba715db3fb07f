"""What Sluice adds per streamed chunk: the same fake provider read directly and through the gateway, same run.

    .venv/bin/python bench/provider_overhead.py [--short 50] [--long 1000] [--runs 7] [--json PATH]

Three processes: a fake OpenAI provider (`sluice fake-provider`, no pacing), a gateway (`sluice serve`) whose
provider points at it, and this client. For each path the client streams a reply of `short` and of `long` chunks
and takes the fastest of `runs` requests (the median is in the JSON); the per-chunk cost is the slope between the
two sizes, so the fixed per-request cost (queueing, store writes) stays out of it and is reported apart. Paths:

- direct: POST the fake's /v1/chat/completions and read its SSE;
- sluice /v1/chat/completions: the same through the gateway's OpenAI-compatible face (`model: fake/m`);
- sluice /v1/ai stream: the gateway's channel events (attempt, delta…, response) as SSE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway import MASTER_KEY, running_gateway


@contextmanager
def fake_provider() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "fake-provider", "--kind", "openai", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def reply(chunks: int) -> str:
    return " ".join(f"w{i % 100}" for i in range(chunks))  # one fake chunk per word


async def script(client: httpx.AsyncClient, fake_url: str, chunks: int, count: int) -> None:
    await client.post(f"{fake_url.removesuffix('/v1')}/_fake/script", json=[{"text": reply(chunks)}] * count)


async def timed_stream(
    client: httpx.AsyncClient, url: str, body: dict, headers: dict[str, str]
) -> tuple[float, float, int]:
    """(seconds to the first content, seconds in all, content chunks seen)."""
    started = time.perf_counter()
    first, seen = 0.0, 0
    async with client.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            # An OpenAI chunk with text, or a channel `delta` event (not the final `response`, which has it all).
            text_chunk = '"content":"' in line and '"content":""' not in line and '"type":' not in line
            if line.startswith("data: ") and (text_chunk or '"type":"delta"' in line):
                seen += 1
                if seen == 1:
                    first = time.perf_counter() - started
    return first, time.perf_counter() - started, seen


async def measure(fake_url: str, gateway_url: str, sizes: tuple[int, int], runs: int) -> dict[str, dict]:
    auth = {"Authorization": f"Bearer {MASTER_KEY}"}
    messages = [{"role": "user", "content": "count"}]
    paths = {
        "direct": (f"{fake_url}/chat/completions", {"model": "m", "messages": messages, "stream": True}, {}),
        "sluice /v1/chat/completions": (
            f"{gateway_url}/v1/chat/completions",
            {"model": "fake/m", "messages": messages, "stream": True},
            auth,
        ),
        "sluice /v1/ai stream": (
            f"{gateway_url}/v1/ai",
            {"workflow": "fake_direct", "messages": messages, "stream": True},
            auth,
        ),
    }
    results: dict[str, dict] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for name, (url, body, headers) in paths.items():
            row: dict[str, float] = {}
            for size in sizes:
                await script(client, fake_url, size, 1)  # warm-up (connections, first-use imports)
                await timed_stream(client, url, body, headers)
                await script(client, fake_url, size, runs)
                samples = [await timed_stream(client, url, body, headers) for _ in range(runs)]
                assert all(s[2] == size for s in samples), f"{name}: expected {size} chunks, saw {samples[0][2]}"
                # The least disturbed run: on a shared machine the minimum tracks the CPU cost, the median the load.
                row[f"total_ms_{size}"] = min(s[1] for s in samples) * 1000
                row[f"median_total_ms_{size}"] = statistics.median(s[1] for s in samples) * 1000
                row[f"first_chunk_ms_{size}"] = min(s[0] for s in samples) * 1000
            short, long = sizes
            row["per_chunk_us"] = (row[f"total_ms_{long}"] - row[f"total_ms_{short}"]) * 1000 / (long - short)
            results[name] = row
    direct = results["direct"]
    for row in results.values():
        row["overhead_per_chunk_us"] = row["per_chunk_us"] - direct["per_chunk_us"]
        row["overhead_first_chunk_ms"] = row[f"first_chunk_ms_{sizes[0]}"] - direct[f"first_chunk_ms_{sizes[0]}"]
    return results


async def clients(fake_url: str, chunks: int, runs: int) -> dict[str, float]:
    """Why the adapters use aiohttp: the same stream read with each client, µs per chunk (fastest run)."""
    import aiohttp

    body = {"model": "m", "messages": [], "stream": True}
    url = f"{fake_url}/chat/completions"

    async def with_httpx(client: httpx.AsyncClient) -> None:
        async with client.stream("POST", url, json=body) as response:
            async for _ in response.aiter_lines():
                pass

    async def with_aiohttp(session: aiohttp.ClientSession) -> None:
        async with session.post(url, json=body) as response:
            async for _ in response.content:
                pass

    timings: dict[str, list[float]] = {"httpx": [], "aiohttp": []}
    async with httpx.AsyncClient(timeout=60) as client, aiohttp.ClientSession() as session:
        await script(client, fake_url, chunks, 2 * runs + 2)
        await with_httpx(client)
        await with_aiohttp(session)
        for _ in range(runs):
            for name, read in (("httpx", lambda: with_httpx(client)), ("aiohttp", lambda: with_aiohttp(session))):
                started = time.perf_counter()
                await read()
                timings[name].append(time.perf_counter() - started)
    return {name: min(values) * 1e6 / chunks for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", type=int, default=50)
    parser.add_argument("--long", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "provider_overhead.json")
    args = parser.parse_args()
    with fake_provider() as fake_url:
        config = (
            f'providers:\n  fake: {{type: openai, api_key: bench, base_url: "{fake_url}"}}\n'
            "workflows:\n  fake_direct:\n    chain: [{provider: fake, model: m}]\n"
        )
        with running_gateway(config) as gateway_url:
            results = asyncio.run(measure(fake_url, gateway_url, (args.short, args.long), args.runs))
        client_costs = asyncio.run(clients(fake_url, args.long, args.runs))
    long = args.long
    print(
        f"{'path':30} {'total ms (' + str(long) + ')':>16} {'per chunk µs':>13} {'overhead µs/chunk':>18} "
        f"{'first chunk +ms':>16}"
    )
    for name, row in results.items():
        print(
            f"{name:30} {row[f'total_ms_{long}']:16.1f} {row['per_chunk_us']:13.1f} "
            f"{row['overhead_per_chunk_us']:18.1f} {row['overhead_first_chunk_ms']:16.1f}"
        )
    print(
        "reading the fake's stream directly, µs per chunk: "
        + ", ".join(f"{name} {cost:.1f}" for name, cost in client_costs.items())
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "sizes": [args.short, args.long],
                "runs": args.runs,
                "results": results,
                "client_us_per_chunk": client_costs,
            },
            indent=2,
        )
    )
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
