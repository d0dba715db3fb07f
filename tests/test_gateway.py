"""`Gateway.authenticate`: a key whose cache entry expired is read from the store once, however many requests wait."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import StartGateway


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
