"""A gateway whose workflows stream slowly from a fake OpenAI provider, for the cancel tests: the fake notes when
its client hangs up (`FakeProvider.hangups`), which is how a test knows the upstream call was closed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from sluice.testing import FakeProvider, Script
from tests.conftest import RunningGateway, StartGateway, write_config
from tests.delivery.helpers import FAST

WORDS = 60
TEXT = " ".join(f"word{i}" for i in range(WORDS))
# About six seconds to stream the whole text: long enough to cancel in the middle, never reached by a test.
SLOW = Script(chunk_delay=0.1)
CONFIG = """
providers:
  fake: {{type: openai, api_key: k, base_url: "{url}"}}
workflows:
  slow:
    chain: [{{provider: fake, model: m, retries: 0}}]
  slow_unwatched:
    chain: [{{provider: fake, model: m, retries: 0}}]
    cancel_when_unwatched_for: 1s
  slow_callback:
    chain: [{{provider: fake, model: m, retries: 0}}]
    callback: {{timeout: 60s, on_timeout: fail}}
"""
TERMINAL = ("response", "error")


@dataclass
class Slow:
    gw: RunningGateway
    fake: FakeProvider

    def client(self) -> httpx.AsyncClient:
        return self.gw.client()

    async def submit(self, workflow: str = "slow", **extra: Any) -> dict[str, Any]:
        body = {"workflow": workflow, "messages": [{"role": "user", "content": "Tell me a long story."}], **extra}
        async with self.client() as client:
            response = await client.post("/v1/ai/async", json=body)
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def cancel(self, request_id: str) -> httpx.Response:
        async with self.client() as client:
            return await client.post(f"/v1/requests/{request_id}/cancel")


@asynccontextmanager
async def slow_gateway(start_gateway: StartGateway, tmp_path: Path, **settings: Any) -> AsyncIterator[Slow]:
    async with FakeProvider("openai", text=TEXT) as fake:
        config = write_config(tmp_path, CONFIG.format(url=fake.base_url))
        yield Slow(await start_gateway(config_path=config, extra=FAST, **settings), fake)


@pytest.fixture
async def slow(start_gateway: StartGateway, tmp_path: Path) -> AsyncIterator[Slow]:
    async with slow_gateway(start_gateway, tmp_path) as gateway:
        yield gateway


class Follower:
    """A subscriber of one channel over the WebSocket: its events, read as a test asks for them."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def until(self, count: int, kind: str = "delta", wait: float = 5.0) -> None:
        """Read until `count` events of type `kind` have come."""
        async with asyncio.timeout(wait):
            while sum(1 for e in self.events if e["type"] == kind) < count:
                await self._read()

    async def to_the_end(self, wait: float = 5.0) -> list[dict[str, Any]]:
        """Read until the server closes the socket after the terminal event."""
        async with asyncio.timeout(wait):
            async for frame in self.ws:
                self._add(frame)
        return self.events

    async def _read(self) -> None:
        self._add(await self.ws.recv())

    def _add(self, frame: str | bytes) -> None:
        event = json.loads(frame)
        if event.get("type") != "heartbeat":
            self.events.append(event)

    def text(self) -> str:
        return "".join(e["text"] for e in self.events if e["type"] == "delta")


@dataclass
class Following:
    url: str

    async def __aenter__(self) -> Follower:
        self._connection = websockets.connect(self.url)
        return Follower(await self._connection.__aenter__())

    async def __aexit__(self, *exc: object) -> None:
        await self._connection.__aexit__(*exc)


def follow(accepted: dict[str, Any], after: int = 0) -> Following:
    return Following(accepted["websocket_url"] + (f"&after={after}" if after else ""))


def one_terminal(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream's terminal event, having checked it is the only one and the last, after numbers in order."""
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and events[-1] is terminals[0], [e["type"] for e in events]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    return terminals[0]
