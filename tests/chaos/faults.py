"""The fault injector: random provider behaviours queued on fake providers, and a webhook endpoint that is down,
slow, failing or well-behaved (calling back, or never), per request. Every fault injected is counted by kind."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.testing import FakeProvider, Script
from tests.conftest import free_port

PROVIDER_FAULTS = ("429", "500", "503", "first_byte_timeout", "cut", "stall", "malformed", "stream_error", "400")
WEBHOOK_BEHAVIOURS = ("callback", "callback_twice", "silent", "500", "slow", "down")
SLOW_WEBHOOK = 1.0  # seconds: longer than the gateway's webhook timeout in the suite


def provider_fault(kind: str, rng: random.Random) -> Script:
    point = rng.randint(0, 6)  # the chunk at which a stream breaks
    return {
        "429": Script(status=429, retry_after=0.02),
        "500": Script(status=500),
        "503": Script(status=503),
        "first_byte_timeout": Script(first_byte_delay=0.6),
        "cut": Script(cut_after=point),
        "stall": Script(stall_after=point),
        "malformed": Script(malformed_at=point),
        "stream_error": Script(error_after=point),
        "400": Script(status=400),
    }[kind]


@dataclass
class ProviderFaults:
    """A pre-drawn sequence of behaviours for one fake provider; each request takes the next one."""

    fake: FakeProvider
    plan: list[str | None]  # None: a clean (sometimes paced) answer

    @classmethod
    def draw(
        cls, fake: FakeProvider, rng: random.Random, count: int, rate: float, kinds: tuple[str, ...] = PROVIDER_FAULTS
    ) -> ProviderFaults:
        weights = [0.2 if kind == "400" else 1.0 for kind in kinds]  # fail-fast errors end requests: keep rare
        plan: list[str | None] = [rng.choices(kinds, weights)[0] if rng.random() < rate else None for _ in range(count)]
        scripts = [
            provider_fault(kind, rng) if kind else Script(chunk_delay=0.02 if rng.random() < 0.3 else 0.0)
            for kind in plan
        ]
        fake.script(*scripts)
        return cls(fake, plan)

    def injected(self) -> Counter[str]:
        """Faults actually served: one script is taken per request the fake received."""
        served = self.plan[: len(self.fake.requests)]
        return Counter(f"provider:{kind}" for kind in served if kind)


@dataclass
class WebhookEndpoint:
    """The backend's webhook URL. The request's `metadata.chaos` says how to behave with it."""

    url: str = ""
    dead_url: str = ""
    received: Counter[str] = field(default_factory=Counter)
    second_callbacks: list[int] = field(default_factory=list)  # status of each reused callback token
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, request: Request) -> Response:
        payload: dict[str, Any] = orjson.loads(await request.body())
        behaviour = (payload.get("metadata") or {}).get("chaos", "callback")
        self.received[behaviour] += 1
        if behaviour == "500":
            return JSONResponse({"error": "scripted"}, status_code=500)
        if behaviour == "slow":
            await asyncio.sleep(SLOW_WEBHOOK)
        elif payload.get("callback_url") and behaviour in ("callback", "callback_twice"):
            task = asyncio.create_task(self._call_back(payload["callback_url"], twice=behaviour == "callback_twice"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return JSONResponse({"ok": True})

    async def _call_back(self, url: str, *, twice: bool) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the gateway may be down right now: the wait's policy ends it
            await self.client.post(url, json={"enriched": True})
            if twice:
                self.second_callbacks.append((await self.client.post(url, json={"again": True})).status_code)

    def url_for(self, behaviour: str) -> str:
        return self.dead_url if behaviour == "down" else self.url


@contextlib.asynccontextmanager
async def webhook_endpoint() -> AsyncIterator[WebhookEndpoint]:
    endpoint = WebhookEndpoint(dead_url=f"http://127.0.0.1:{free_port()}/nobody-listens")
    port = free_port()
    app = Starlette(routes=[Route("/hook", endpoint.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", timeout_keep_alive=30)
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    endpoint.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield endpoint
    finally:
        for pending in list(endpoint._tasks):
            pending.cancel()
        await endpoint.client.aclose()
        server.should_exit = True
        server.force_exit = True
        async with asyncio.timeout(10):
            await task
