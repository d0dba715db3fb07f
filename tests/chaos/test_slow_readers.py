"""Slow WebSocket readers: clients that stop reading a long channel must not stall anyone else, and must not make the
gateway buffer what they do not read (its memory stays bounded); when they read again, nothing is missing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
import websockets

from sluice.testing import FakeProvider, Script
from tests.chaos.invariants import Observed, violations
from tests.chaos.process import GatewayProcess
from tests.conftest import MASTER_KEY

pytestmark = pytest.mark.chaos

LONG_TEXT = "tok " * 250_000  # 1 MB of text: ~2 MB of frames per reader (the deltas, then the final object)
SLOW_READERS = 20
FAST_REQUESTS = 150
ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
CONFIG = """
providers:
  long: {{type: openai, api_key: k, base_url: "{long}"}}
  quick: {{type: openai, api_key: k, base_url: "{quick}"}}
workflows:
  long: {{chain: [{{provider: long, model: m}}]}}
  quick: {{chain: [{{provider: quick, model: m}}]}}
"""


async def submit(client: httpx.AsyncClient, workflow: str) -> dict:
    body = {"workflow": workflow, "messages": [{"role": "user", "content": "hi"}]}
    response = await client.post("/v1/ai/async", json=body, headers=ADMIN)
    assert response.status_code == 202, response.text
    return response.json()


async def read_all(url: str) -> Observed:
    seen = Observed(request_id=url)
    async with websockets.connect(url, max_size=None) as ws:
        async for frame in ws:
            event = orjson.loads(frame)
            if "seq" in event:
                seen.events.append(event)
    return seen


@pytest.mark.timeout(120)
async def test_slow_readers_neither_stall_others_nor_grow_memory(tmp_path: Path) -> None:
    async with FakeProvider("openai", text=LONG_TEXT) as long, FakeProvider("openai") as quick:
        config = tmp_path / "sluice.yaml"
        config.write_text(CONFIG.format(long=long.base_url, quick=quick.base_url))
        long.script(Script(chunks=2000))
        gateway = GatewayProcess(
            config=config,
            data_dir=tmp_path / "data",
            log_path=tmp_path / "gateway.log",
            env={"SLUICE_HEARTBEAT_INTERVAL": "0.5"},
        )
        await gateway.start()
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
                channel = await submit(client, "long")
                async with asyncio.timeout(60):
                    while (await client.get(f"/v1/requests/{channel['channel_id']}", headers=ADMIN)).json()[
                        "status"
                    ] != "completed":
                        await asyncio.sleep(0.1)
                for _ in range(5):  # warm up the quick path before measuring
                    await read_all((await submit(client, "quick"))["websocket_url"])
                baseline = gateway.rss_bytes()
                # Slow readers: each reads one frame, then nothing; its client stops taking bytes off the socket.
                slow = [
                    await websockets.connect(channel["websocket_url"], max_size=None, max_queue=1)
                    for _ in range(SLOW_READERS)
                ]
                for ws in slow:
                    await ws.recv()
                await asyncio.sleep(0.5)  # the gateway pushes what the sockets take, then waits

                started = time.monotonic()
                latencies: list[float] = []

                async def fast() -> Observed:
                    begun = time.monotonic()
                    seen = await read_all((await submit(client, "quick"))["websocket_url"])
                    latencies.append(time.monotonic() - begun)
                    return seen

                gate = asyncio.Semaphore(30)

                async def bounded() -> Observed:
                    async with gate:
                        return await fast()

                results = await asyncio.gather(*(bounded() for _ in range(FAST_REQUESTS)))
                elapsed = time.monotonic() - started
                held = gateway.rss_bytes()
                # Two slow readers now read on: every event arrives, in order, ending with the terminal one.
                drained = []
                for ws in slow[:2]:
                    seen = Observed(request_id="slow reader", status="completed")
                    async with asyncio.timeout(60):
                        async for frame in ws:
                            event = orjson.loads(frame)
                            if "seq" in event:
                                seen.events.append(event)
                    drained.append(seen)
                for ws in slow[2:]:
                    await ws.close()
        finally:
            await gateway.stop()

    growth = held - baseline
    print(
        f"\nslow readers: {SLOW_READERS} readers stalled on a {len(LONG_TEXT) / 2**20:.1f} MiB channel; "
        f"{FAST_REQUESTS} other requests in {elapsed:.1f}s (slowest {max(latencies):.2f}s); "
        f"gateway memory +{growth / 2**20:.1f} MiB"
    )
    assert all(seen.events[-1]["type"] == "response" for seen in results)
    assert max(latencies) < 5.0, "a slow reader stalled other requests"
    # Buffering what 20 readers did not read would cost ~40 MiB; the gateway holds a cursor per reader instead.
    assert growth < 16 * 2**20, f"gateway memory grew {growth / 2**20:.1f} MiB under slow readers"
    for seen in drained:
        # The reader's first frame was taken before it stalled; the rest must follow with no gap or repeat.
        assert [e["seq"] for e in seen.events] == list(range(2, 2 + len(seen.events)))
        assert seen.events[-1]["type"] == "response" and seen.events[-1]["data"]["content"] == LONG_TEXT
        assert not [
            p
            for p in violations(Observed("x", [{"seq": 1, "type": "status"}, *seen.events], 0, "completed"))
            if "gap" in p or "terminal" in p
        ]
