"""Shared helpers for webhook tests: fast delivery settings, a workflow file with callback policies, event reading."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import MASTER_KEY, RunningGateway

FAST = {"webhook_retry_schedule": [0, 0.05, 0.05, 0.05], "webhook_jitter": 0.1, "callback_sweep_interval": 0.2}

WORKFLOWS = """
providers:
  sim: {type: simulated, pace_ms: 0}
workflows:
  deliver_fast:
    event: new_chat
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    callback: {timeout: 400ms, on_timeout: deliver}
  fail_fast:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    callback: {timeout: 400ms, on_timeout: fail}
  slow_callback:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    callback: {timeout: 60s, on_timeout: fail}
  forwarded:
    chain: [{provider: sim, model: sim-1}]
    schema: {reply: string, sentiment: "positive | negative | neutral | mixed"}
    webhook_url: forward
    callback: {timeout: 60s, on_timeout: fail}
"""


def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "workflows.yaml"
    path.write_text(WORKFLOWS)
    return path


async def channel_events(websocket_url: str, wait: float = 10.0) -> list[dict[str, Any]]:
    """Every event of a channel up to its terminal one (heartbeats dropped)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(wait), websockets.connect(websocket_url) as ws:
        async for frame in ws:
            event = json.loads(frame)
            if event["type"] != "heartbeat":
                events.append(event)
    return events


def admin_client(gw: RunningGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gw.url, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=10)


async def eventually(check: Callable[[], Awaitable[Any]], wait: float = 5.0, every: float = 0.02) -> Any:
    """Poll `check` until it returns something truthy (a store write that follows an observed side effect)."""
    async with asyncio.timeout(wait):
        while not (result := await check()):
            await asyncio.sleep(every)
    return result


def serve_gateway(port: int, data_dir: Path, config: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLUICE_MASTER_KEY": MASTER_KEY,
        "SLUICE_SECRET_KEY": "callback-restart-secret-0123456789",
        "SLUICE_CONFIG": str(config),
        "SLUICE_ENV": "development",
        "SLUICE_HEARTBEAT_INTERVAL": "0.5",
    }
    command = [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(client: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(30):
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else "exited"
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
