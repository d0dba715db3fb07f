"""Scenario 4: N concurrent subscribers (1k, 5k) on one gateway, over WebSocket and over SSE: RSS per idle
connection, events/s delivered.

    .venv/bin/python bench/fanout.py [--subscribers 1000 5000] [--channels 20] [--chunks 40] [--pace-ms 20] [--steady]
                                     [--transports ws sse]

For each N and transport, a fresh gateway and a mock upstream that holds its streams: `channels` requests are
submitted (`/v1/ai/async`, workflow `bench`), N subscribers connect round-robin to their `websocket_url`s (`ws`) or
their `events_url`s with the `ws_token` (`sse`, `GET /v1/channels/{id}/events`) and sit idle; the gateway's RSS before
and after gives the memory per idle connection. Then the mock releases the streams (`chunks` deltas each, `pace-ms`
apart) and every subscriber reads to the terminal event: delivered events/s is the frames (SSE: events) received
after the release over the time until the last subscriber got its terminal event; tokens/s counts the upstream's
chunks instead (a gateway behind its upstream joins several into one delta). The subscribers are raw asyncio
protocols in this one process (bench/wsclient.py, bench/sseclient.py), on the same two cores as the gateway.

events/s is what the subscribers received: WebSocket frames per second, each frame one event. With the default pace
the upstream offers more than the gateway can send (20 channels x 50 tokens/s x N/20 subscribers each = 50 x N frames
per second), so the gateway joins the deltas it reads late into one event: fewer, bigger frames. The table says so
(`tok/frame` above 1, `merged`), and events/s then is not the figure of a gateway that sends every token as a frame.
`--steady` (WebSocket) adds that figure: for each N it slows the upstream (from N/100 ms, an offered 100,000
frames/s, the pace doubled each step) until every chunk reaches every subscriber as its own frame, and reports the
events/s delivered there, which is bounded by the offered rate (N x 1000 / pace): the gateway's capacity lies between
that step's figure and the previous, merged, step's offered rate. `tok/frame` counts the terminal frame too
(chunks / (chunks + 1) when nothing is merged).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gateway import MASTER_KEY
from _servers import WORKFLOW, mock_upstream, pid_listening, rss_kb, sluice_gateway
from loadgen import install_uvloop
from sseclient import SseSubscriber, subscribe_sse
from wsclient import Subscriber, subscribe

BODY = {"workflow": WORKFLOW, "messages": [{"role": "user", "content": "fan out"}]}


async def fan_out(
    url: str,
    upstream: str,
    pid: int,
    subscribers: int,
    channels: int,
    chunks: int,
    transport: str = "ws",
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        accepted = [(await client.post("/v1/ai/async", json=BODY)).json() for _ in range(channels)]
    if transport == "sse":
        urls, open_subscriber = [f"{a['events_url']}?token={a['ws_token']}" for a in accepted], subscribe_sse
    else:
        urls, open_subscriber = [a["websocket_url"] for a in accepted], subscribe
    await asyncio.sleep(1.0)  # the runs reach the mock and wait there
    rss_before = rss_kb(pid)
    gate = asyncio.Semaphore(200)  # connects in flight; the listen backlog is finite

    async def connect(index: int) -> Subscriber | SseSubscriber | None:
        async with gate:
            try:
                return await open_subscriber(urls[index % len(urls)])
            except (OSError, ConnectionError):
                return None

    started = time.perf_counter()
    opened = await asyncio.gather(*(connect(i) for i in range(subscribers)))
    connect_seconds = time.perf_counter() - started
    live = [s for s in opened if s is not None]
    await asyncio.sleep(2.0)  # idle: replayed events delivered, the streams still held
    rss_idle = rss_kb(pid)
    before = sum(s.frames for s in live)
    released = time.perf_counter()
    async with httpx.AsyncClient() as client:
        (await client.post(f"{upstream.removesuffix('/v1')}/_release")).raise_for_status()
    await asyncio.wait([asyncio.ensure_future(s.closed) for s in live], timeout=180)
    ended = max((s.terminal or 0.0) for s in live) or time.perf_counter()
    delivered = sum(s.frames for s in live) - before
    for subscriber in live:
        subscriber.close()
    seconds = max(ended - released, 1e-9)
    finished = sum(1 for s in live if s.terminal is not None)
    return {
        "transport": transport,
        "subscribers": subscribers,
        "connected": len(live),
        "failed_to_connect": subscribers - len(live),
        "finished": finished,
        "channels": channels,
        "chunks": chunks,
        "connect_seconds": round(connect_seconds, 2),
        "rss_before_kb": rss_before,
        "rss_idle_kb": rss_idle,
        "rss_per_idle_connection_kb": round((rss_idle - rss_before) / max(len(live), 1), 1),
        "events_delivered": delivered,
        "delivery_seconds": round(seconds, 3),
        "events_per_second": round(delivered / seconds, 1),
        # The upstream's chunks that reached every subscriber, per second. A gateway that falls behind its upstream
        # joins the deltas it reads together (one event for several tokens), so events/s alone undercounts it.
        "tokens_per_second": round(finished * chunks / seconds, 1),
        "frames_per_subscriber": round(delivered / max(finished, 1), 2),
        # The deltas and the terminal event: chunks + 1 frames when every token was its own event.
        "merged": delivered < finished * (chunks + 1),
    }


def run(
    subscribers: int, channels: int, chunks: int, pace_ms: float, merge_reads: bool = True, transport: str = "ws"
) -> dict[str, Any]:
    with (
        mock_upstream(chunks=chunks, pace_ms=pace_ms, hold=True) as upstream,
        sluice_gateway(upstream, merge_reads) as (url, _key),
    ):
        result = asyncio.run(fan_out(url, upstream, pid_listening(url), subscribers, channels, chunks, transport))
    result["pace_ms"] = pace_ms
    result["merge_reads"] = merge_reads
    return result


def steady(subscribers: int, channels: int, chunks: int, from_ms: float, limit_ms: float) -> list[dict[str, Any]]:
    """Runs at a slower and slower upstream until the gateway sends every chunk as its own frame."""
    runs, pace = [], from_ms
    while pace <= limit_ms:
        runs.append(run(subscribers, channels, chunks, pace))
        if not runs[-1]["merged"] and runs[-1]["finished"] == subscribers:
            break
        pace *= 2
    return runs


def report(title: str, results: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(
        f"{'via':>3} {'subs':>6} {'pace ms':>7} {'connected':>9} {'finished':>8} {'KB/idle conn':>12} "
        f"{'frames/sub':>10} {'tok/frame':>9} {'events':>9} {'seconds':>8} {'events/s':>10} {'tokens/s':>10}  merged"
    )
    for r in results:
        per_frame = r["tokens_per_second"] / max(r["events_per_second"], 1e-9)
        print(
            f"{r.get('transport', 'ws'):>3} {r['subscribers']:6d} {r['pace_ms']:7g} {r['connected']:9d} "
            f"{r['finished']:8d} {r['rss_per_idle_connection_kb']:12.1f} {r['frames_per_subscriber']:10.2f} "
            f"{per_frame:9.2f} {r['events_delivered']:9d} {r['delivery_seconds']:8.2f} {r['events_per_second']:10.1f} "
            f"{r['tokens_per_second']:10.1f}  {'yes' if r['merged'] else 'no'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--pace-ms", type=float, default=20.0)
    parser.add_argument(
        "--steady", action="store_true", help="also find the pace at which every chunk is its own frame (see above)"
    )
    parser.add_argument("--steady-from-ms", type=float, help="the first --steady pace (default: N/100 ms)")
    parser.add_argument("--steady-chunks", type=int, default=20, help="chunks per stream in the --steady runs")
    parser.add_argument(
        "--transports", nargs="+", choices=["ws", "sse"], default=["ws", "sse"], help="the subscribers' transports"
    )
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "fanout.json")
    args = parser.parse_args()
    install_uvloop()
    results, sse_runs, per_token = [], [], []
    if "ws" in args.transports:
        results = [run(n, args.channels, args.chunks, args.pace_ms) for n in args.subscribers]
    if "sse" in args.transports:
        sse_runs = [run(n, args.channels, args.chunks, args.pace_ms, transport="sse") for n in args.subscribers]
    report(
        f"Fan-out: {args.channels} channels, {args.chunks} deltas each, {args.pace_ms:g} ms apart "
        "(events/s counts frames or SSE events; merged = the gateway joined deltas it read late; KB/idle conn: the "
        "gateway's memory per idle subscriber)",
        [*results, *sse_runs],
    )
    if "ws" in args.transports:
        per_token = [run(n, args.channels, args.chunks, args.pace_ms, merge_reads=False) for n in args.subscribers]
    report(
        "The same with the provider's `merge_reads: false`: every upstream chunk its own event, however late "
        "the gateway reads (the events/s the gateway delivers)",
        per_token,
    )
    steady_runs: list[dict[str, Any]] = []
    if args.steady:
        for count in args.subscribers:
            start = args.steady_from_ms or count / 100
            steady_runs += steady(count, args.channels, args.steady_chunks, start, 3200.0)
        report(
            f"Steady: {args.steady_chunks} deltas per stream, the pace doubled until nothing is merged; the last "
            "row of each N is the events/s delivered with every token its own frame (at most N x 1000 / pace)",
            steady_runs,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "channels": args.channels,
                "chunks": args.chunks,
                "pace_ms": args.pace_ms,
                "runs": results,
                "sse_runs": sse_runs,
                "per_token_runs": per_token,
                "steady_runs": steady_runs,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
