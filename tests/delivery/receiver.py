"""A real webhook receiver on loopback: answers with scripted statuses and records every request it gets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once exhausted
    on_request: Callable[[Received], Awaitable[None]] | None = None
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        item = Received(headers=dict(request.headers), body=await request.body(), path=request.url.path)
        self.received.append(item)
        self.arrived.put_nowait(item)
        if self.on_request is not None:
            await self.on_request(item)
        status = self.statuses.pop(0) if self.statuses else 200
        return JSONResponse({"received": True, "status": status}, status_code=status)

    async def next(self, wait: float = 5.0) -> Received:
        async with asyncio.timeout(wait):
            return await self.arrived.get()


@contextlib.asynccontextmanager
async def running_receiver(
    statuses: list[int] | None = None, on_request: Callable[[Received], Awaitable[None]] | None = None
) -> AsyncIterator[Receiver]:
    receiver = Receiver(statuses=list(statuses or []), on_request=on_request)
    port = free_port()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/webhook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


def json_of(item: Received) -> Any:
    import json

    return json.loads(item.body)
