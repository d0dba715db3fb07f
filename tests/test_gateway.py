"""`Gateway.authenticate`: a key whose cache entry expired is read from the store once, however many requests wait.
`Gateway.cancel`: an unfinished request ends as `cancelled` once, through the lifecycle's `finish()`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from sluice.errors import NotFound
from sluice.events import ErrorEvent
from sluice.gateway import Principal
from tests.conftest import StartGateway, chat_body, paced_config


async def test_concurrent_misses_share_one_store_read(start_gateway: StartGateway) -> None:
    gateway = (gw := await start_gateway()).gateway
    reads: list[str] = []
    find = gateway.store.find_api_key

    async def counted(api_key: str) -> Any:
        reads.append(api_key)
        return await find(api_key)

    gateway.store.find_api_key = counted  # type: ignore[method-assign]
    gateway.key_cache.clear()
    principals = await asyncio.gather(*(gateway.authenticate(gw.api_key) for _ in range(20)))
    assert len(reads) == 1
    assert principals[0] is not None and all(p == principals[0] for p in principals)
    assert await gateway.authenticate(gw.api_key) == principals[0] and len(reads) == 1  # now cached

    unknown = await asyncio.gather(*(gateway.authenticate("sk_sluice_unknown") for _ in range(5)))
    assert unknown == [None] * 5 and len(reads) == 2
    assert await gateway.authenticate("sk_sluice_unknown") is None and len(reads) == 3  # an unknown key is not cached


async def test_cancel_ends_an_unfinished_request_once_and_leaves_a_finished_one(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(config_path=paced_config(tmp_path, 10))  # ~1 s of tokens: cancelled well before its end
    gateway = gw.gateway
    principal = await gateway.authenticate(gw.api_key)
    assert principal is not None
    running = (await gateway.submit(principal, chat_body(), mode="async")).record
    cancelled = await gateway.cancel(principal, running.id)
    assert cancelled.status == "cancelled" and cancelled.error == {
        "code": "cancelled",
        "message": "the request was cancelled",
    }
    terminal = await gateway.wait_terminal(running.id)
    assert isinstance(terminal.event, ErrorEvent) and terminal.event.code == "cancelled"
    assert cancelled.terminal_seq == terminal.seq
    assert await gateway.cancel(principal, running.id) == cancelled  # the first end stays

    done = (await gateway.submit(principal, chat_body(), mode="async")).record
    await gateway.wait_terminal(done.id)  # the simulated run completes
    finished = await gateway.cancel(principal, done.id)
    assert finished.status == "completed" and finished.data is not None
    stranger = Principal(project_id="proj_other", key_id="key_other")
    with pytest.raises(NotFound):
        await gateway.cancel(stranger, done.id)
