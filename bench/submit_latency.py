"""Submit latency and submit → first WebSocket `delta`, simulated provider with zero pacing.

    .venv/bin/python bench/submit_latency.py [--requests 300] [--json bench/results/submit_latency.json]

Sequential requests (concurrency 1), one keep-alive HTTP connection; each WebSocket is opened right after its 202,
as a browser would after the backend's round trip. Prints p50/p90/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway import MASTER_KEY, running_gateway

CONFIG = "providers:\n  simulated: {type: simulated, pace_ms: 0}\n"
BODY = {"workflow": "demo", "messages": [{"role": "user", "content": "How fast is this gateway?"}]}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": round(statistics.median(ordered), 3), "p90": round(pick(0.9), 3), "p99": round(pick(0.99), 3)}


async def measure(url: str, count: int) -> dict[str, dict[str, float]]:
    submit_ms: list[float] = []
    first_delta_ms: list[float] = []
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        for _ in range(20):  # warm up connections, caches and the SQLite file
            await client.post("/v1/ai/async", json=BODY)
        for _ in range(count):
            started = time.perf_counter()
            response = await client.post("/v1/ai/async", json=BODY)
            submitted = time.perf_counter()
            assert response.status_code == 202, response.text
            first_delta = None
            # Read to the server's close: a client that stops reading leaves the close frame unread behind its
            # full queue and would time out closing.
            async with websockets.connect(response.json()["websocket_url"]) as ws:
                async for frame in ws:
                    if first_delta is None and json.loads(frame).get("type") == "delta":
                        first_delta = time.perf_counter()
            assert first_delta is not None
            first_delta_ms.append((first_delta - started) * 1000)
            submit_ms.append((submitted - started) * 1000)
    return {"submit_to_202_ms": percentiles(submit_ms), "submit_to_first_ws_delta_ms": percentiles(first_delta_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with running_gateway(CONFIG) as url:
        results = asyncio.run(measure(url, args.requests))
    print(f"{'metric':32} {'p50':>8} {'p90':>8} {'p99':>8}   (ms, {args.requests} sequential requests)")
    for name, values in results.items():
        print(f"{name:32} {values['p50']:8.2f} {values['p90']:8.2f} {values['p99']:8.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"requests": args.requests, **results}, indent=2))


if __name__ == "__main__":
    main()
