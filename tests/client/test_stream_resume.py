"""`stream()` survives a broken connection: it reconnects with Last-Event-ID and yields every event exactly once.

A loopback TCP proxy between the SDK and the real gateway cuts the first connection after it has carried a few
events, the way a load balancer or a flaky network would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.client import AsyncSluiceClient
from tests.conftest import StartGateway, paced_config


class CuttingProxy:
    """Forwards to `target_port`; the first connection is closed once `cut_after` bytes came back from upstream."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        limit = self.cut_after if self.connections == 1 else None
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int | None) -> None:
            sent = 0
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(4096):
                    if budget is not None and sent + len(data) >= budget:
                        writer.write(data[: budget - sent])
                        break
                    writer.write(data)
                    sent += len(data)
                    await writer.drain()

        to_upstream = asyncio.create_task(pipe(client_reader, upstream_writer, None))
        await pipe(upstream_reader, client_writer, limit)
        to_upstream.cancel()
        for writer in (client_writer, upstream_writer):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def proxied(start_gateway: StartGateway, tmp_path: Path) -> AsyncIterator[tuple[str, CuttingProxy, str, str]]:
    gw = await start_gateway(config_path=paced_config(tmp_path, 5))
    proxy = CuttingProxy(gw.settings.port, cut_after=1500)
    port = await proxy.start()
    yield gw.url, proxy, f"http://127.0.0.1:{port}", gw.api_key
    await proxy.aclose()


async def test_stream_resumes_after_the_connection_breaks(proxied: tuple[str, CuttingProxy, str, str]) -> None:
    direct_url, proxy, proxied_url, api_key = proxied
    async with AsyncSluiceClient(direct_url, api_key=api_key) as direct:
        accepted = await direct.submit("demo", "a stream that gets cut")
        expected = [(event.seq, event.type) async for event in direct.stream(accepted.channel_id)]
    async with AsyncSluiceClient(proxied_url, api_key=api_key, max_reconnects=3) as cut:
        received = [(event.seq, event.type) async for event in cut.stream(accepted.channel_id)]
    assert proxy.connections >= 2, "the first connection was not cut"
    assert received == expected  # every event, once, in order, although the first connection broke
