"""Shared fixtures: a real gateway served by uvicorn on loopback, in the test's own event loop."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sluice.api.app import create_app
from sluice.api.wsframes import SERVER_OPTIONS
from sluice.gateway import Gateway
from sluice.settings import Settings
from tests.backends import (
    backend,  # noqa: F401  (fixture: PostgreSQL/Redis when SLUICE_TEST_*_URL ask for them)
    backend_tests_only,
    private_redis,  # noqa: F401  (fixture: a redis-server of the test's own, to stop)
)

MASTER_KEY = "test-master-key-0123456789"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SLUICE_TEST_BACKEND_ONLY") == "1":
        items[:], deselected = backend_tests_only(items)
        config.hook.pytest_deselected(items=deselected)


async def within_one_minute_window(needed: float = 10.0) -> None:
    """Wait, if need be, for a minute window with `needed` seconds left: rpm and tpm are counted in fixed minute
    windows (`sluice.broker.ledger`), and a test whose requests straddled two would see its count start again."""
    left = 60.0 - time.time() % 60.0
    if left < needed:
        await asyncio.sleep(left + 0.05)


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
async def start_gateway(tmp_path: Path, backend: dict[str, Any]) -> AsyncIterator[StartGateway]:  # noqa: F811
    """Start gateways with settings overrides; each is shut down at the end of the test."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    listening: list[socket.socket] = []

    async def start(**overrides: Any) -> RunningGateway:
        # The listening socket is bound here and handed to uvicorn: a port picked by `free_port` and bound later can
        # be taken meanwhile by the other pytest run beside this one (scripts/test), and uvicorn exits on that.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", overrides.pop("port", None) or 0))
        listening.append(sock)
        port = sock.getsockname()[1]
        server_options = {**SERVER_OPTIONS, **overrides.pop("server_options", {})}  # uvicorn's, as `sluice serve`
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": tmp_path / "data",
            "master_key": MASTER_KEY,
            "secret_key": "test-secret-key-for-signing-tokens-0123456789",
            "env": "development",
            "heartbeat_interval": 0.5,
            **backend,
        }
        values.update(overrides)
        settings = Settings.from_env(environ={}, **values)
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on", **server_options
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        running.append((server, task))
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        gateway: Gateway = config.app.state.gateway  # type: ignore[union-attr]
        api_key, _ = await gateway.store.create_api_key(gateway.default_project_id, "tests")
        return RunningGateway(
            url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}",
            settings=settings,
            server=server,
            api_key=api_key,
        )

    yield start
    for server, _ in running:
        server.should_exit = True
    for _, task in running:
        try:
            async with asyncio.timeout(10):
                await task
        except TimeoutError:
            task.cancel()
    for sock in listening:
        sock.close()


@pytest.fixture
async def gw(start_gateway: StartGateway) -> RunningGateway:
    """One gateway with the built-in catalog; the simulated provider streams with no pause."""
    return await start_gateway()


def chat_body(text: str = "hello", workflow: str = "demo", **extra: Any) -> dict[str, Any]:
    return {"workflow": workflow, "messages": [{"role": "user", "content": text}], **extra}


def write_config(directory: Path, text: str) -> Path:
    """A YAML catalog (providers + workflows) for `start_gateway(config_path=…)`."""
    path = directory / "sluice.yaml"
    path.write_text(text)
    return path


def paced_config(directory: Path, pace_ms: float) -> Path:
    """The built-in demo catalog with the simulated provider paced at `pace_ms` per token."""
    return write_config(directory, f"providers:\n  simulated: {{type: simulated, pace_ms: {pace_ms}}}\n")


async def collect_ws(url: str, *, stop_after: int | None = None, timeout: float = 15) -> list[dict[str, Any]]:
    """Every frame of a WebSocket until the server closes it (or `stop_after` events), heartbeats included."""
    import json

    import websockets

    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout), websockets.connect(url) as ws:
        async for frame in ws:
            frames.append(json.loads(frame))
            if stop_after is not None and len([f for f in frames if "seq" in f]) >= stop_after:
                break
    return frames


def events_only(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame.get("type") != "heartbeat"]


# Shared fixtures defined elsewhere (imported last: those modules import this one).
from tests.cancelling import slow  # noqa: E402, F401  (fixture: a gateway streaming slowly from a fake provider)
