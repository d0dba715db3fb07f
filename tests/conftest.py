"""Shared fixtures: a real gateway served by uvicorn on loopback, in the test's own event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sluice.api.app import create_app
from sluice.gateway import Gateway
from sluice.settings import Settings

MASTER_KEY = "test-master-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningGateway:
    url: str
    ws_url: str
    settings: Settings
    server: uvicorn.Server
    api_key: str

    @property
    def gateway(self) -> Gateway:
        return self.server.config.app.state.gateway  # type: ignore[union-attr]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=10, **kwargs)


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    """Start gateways with settings overrides; each is shut down at the end of the test."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> RunningGateway:
        port = overrides.pop("port", None) or free_port()
        values: dict[str, Any] = {
            "host": "127.0.0.1", "port": port, "data_dir": tmp_path / "data", "master_key": MASTER_KEY,
            "secret_key": "test-secret-key-for-signing-tokens-0123456789", "env": "development", "heartbeat_interval": 0.5,
        }
        values.update(overrides)
        settings = Settings.from_env(environ={}, **values)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                lifespan="on", ws="websockets-sansio")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        running.append((server, task))
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        gateway: Gateway = config.app.state.gateway  # type: ignore[union-attr]
        api_key, _ = await gateway.store.create_api_key(gateway.default_project_id, "tests")
        return RunningGateway(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}", settings=settings,
                              server=server, api_key=api_key)

    yield start
    for server, task in running:
        server.should_exit = True
    for server, task in running:
        try:
            async with asyncio.timeout(10):
                await task
        except TimeoutError:
            task.cancel()


@pytest.fixture
async def gw(start_gateway: StartGateway) -> RunningGateway:
    """One gateway with the built-in catalog; the simulated provider streams with no pause."""
    return await start_gateway()


def chat_body(text: str = "hello", workflow: str = "demo", **extra: Any) -> dict[str, Any]:
    return {"workflow": workflow, "messages": [{"role": "user", "content": text}], **extra}
