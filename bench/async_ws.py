"""Scenario 3: `POST /v1/ai/async` → first `delta` on the WebSocket, and → the terminal event; direct call as baseline.

    .venv/bin/python bench/async_ws.py [--requests 200] [--concurrency 1 16] [--json bench/results/async_ws.json]

Each loop submits a request (workflow `bench`: the mock upstream through an `openai-compatible` provider), opens the
returned `websocket_url` as soon as the 202 arrives (as a browser would after the backend's round trip) and reads to
the server's close. Baseline, same run: the same mock streamed directly (time to first content chunk, and to the end).
Overheads are Sluice's p50 minus the direct p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import WORKFLOW, mock_upstream, sluice_gateway
from loadgen import Connection, chat_body, encode_request, install_uvloop, percentiles, run_load
from wsclient import subscribe

BODY = {"workflow": WORKFLOW, "messages": [{"role": "user", "content": "How fast is this gateway?"}]}


async def submit_and_follow(url: str, key: str, requests: int, concurrency: int, seconds: float) -> dict[str, Any]:
    host, port, raw = encode_request(f"{url}/v1/ai/async", BODY, key)
    accepted_ms: list[float] = []
    first_ms: list[float] = []
    terminal_ms: list[float] = []
    errors: list[str] = []
    budget = [requests]
    deadline = time.perf_counter() + seconds

    async def loop(record: bool, count: int | None = None) -> None:
        connection = Connection(host, port)
        try:
            while (count is None and budget[0] > 0 and time.perf_counter() < deadline) or (count or 0) > 0:
                if count is None:
                    budget[0] -= 1
                else:
                    count -= 1
                started = time.perf_counter()
                status, _, body = await connection.request(raw)
                accepted = time.perf_counter()
                if status != 202:
                    errors.append(f"HTTP {status}: {body[:200]!r}")
                    continue
                subscriber = await subscribe(json.loads(body)["websocket_url"])
                await asyncio.wait_for(subscriber.closed, 30)
                if subscriber.first_delta is None or subscriber.terminal is None:
                    errors.append(f"stream without delta or terminal ({subscriber.frames} frames)")
                    continue
                if record:
                    accepted_ms.append((accepted - started) * 1000)
                    first_ms.append((subscriber.first_delta - started) * 1000)
                    terminal_ms.append((subscriber.terminal - started) * 1000)
        finally:
            await connection.close()

    await asyncio.gather(*(loop(False, 3) for _ in range(concurrency)))  # warm-up
    started = time.perf_counter()
    await asyncio.gather(*(loop(True) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "ok": len(first_ms),
        "errors": len(errors),
        "error_examples": errors[:3],
        "rps": round(len(first_ms) / elapsed, 1),
        "submit_to_202_ms": percentiles(accepted_ms),
        "submit_to_first_delta_ms": percentiles(first_ms),
        "submit_to_terminal_ms": percentiles(terminal_ms),
    }


async def measure(upstream: str, url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for level in args.concurrency:
        direct = await run_load(
            f"{upstream}/chat/completions",
            chat_body("mock", True),
            concurrency=level,
            requests=args.requests,
            duration=args.seconds,
            warmup=2,
        )
        through = await submit_and_follow(url, key, args.requests, level, args.seconds)
        results[str(level)] = {
            "direct": direct,
            "sluice": through,
            "overhead_first_delta_p50_ms": _minus(through["submit_to_first_delta_ms"]["p50"], direct["ttft_ms"]["p50"]),
            "overhead_terminal_p50_ms": _minus(through["submit_to_terminal_ms"]["p50"], direct["latency_ms"]["p50"]),
        }
    return results


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=10.0, help="upper bound of one run")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "async_ws.json")
    args = parser.parse_args()
    install_uvloop()
    with mock_upstream(chunks=20) as upstream, sluice_gateway(upstream) as (url, key):
        results = asyncio.run(measure(upstream, url, key, args))
    print("\nasync submit -> WebSocket (ms; direct = the mock streamed directly, same run)")
    print(
        f"{'conc':>5} {'202 p50':>8} {'delta p50':>10} {'p90':>8} {'p99':>8} {'end p50':>8} {'direct TTFT':>12} "
        f"{'+delta p50':>11} {'+end p50':>9} {'req/s':>7} {'err':>4}"
    )
    for level, row in results.items():
        s, d = row["sluice"], row["direct"]
        print(
            f"{level:>5} {s['submit_to_202_ms']['p50']:8.2f} {s['submit_to_first_delta_ms']['p50']:10.2f} "
            f"{s['submit_to_first_delta_ms']['p90']:8.2f} {s['submit_to_first_delta_ms']['p99']:8.2f} "
            f"{s['submit_to_terminal_ms']['p50']:8.2f} {d['ttft_ms']['p50']:12.2f} "
            f"{row['overhead_first_delta_p50_ms']:11.2f} {row['overhead_terminal_p50_ms']:9.2f} "
            f"{s['rps']:7.1f} {s['errors']:4d}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
