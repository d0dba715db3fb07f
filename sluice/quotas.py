"""Per-API-key limits: a request rate (SLUICE_RATE_LIMIT) and a number of streams open at once
(SLUICE_MAX_CONCURRENT_STREAMS). Both are counted by the broker, so several instances share one count.

Every socket holds a stream while it is open (`/v1/ws`, Phoenix, SSE, `sluice forward`'s session), as does every
streamed answer; a socket opened with an API key is also an API call (rate). The master key is the operator's
bootstrap key and is not limited. A `ws_token` counts against the key that submitted its request (its `kid` claim), so
a backend cannot dodge the stream limit by handing tokens to browsers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sluice.broker.base import Broker
from sluice.errors import TooManyRequests
from sluice.settings import Settings

MASTER_KEY_ID = "master"  # `Principal.key_id` of SLUICE_MASTER_KEY
# A slot whose holder died (its instance was killed) is freed after this long; a live stream releases it at once.
SLOT_TTL = 3600.0


class RateLimited(TooManyRequests):
    def __init__(self, message: str, *, retry_after: float, code: str = "rate_limited") -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass
class StreamSlot:
    """A held stream slot; `release` is idempotent."""

    broker: Broker | None = None
    key: str = ""
    token: str = ""

    async def release(self) -> None:
        if self.broker is not None:
            broker, self.broker = self.broker, None
            await broker.release_slot(self.key, self.token)


class Quotas:
    def __init__(self, settings: Settings, broker: Broker) -> None:
        self.rate = settings.rate_limit_window
        self.max_streams = settings.max_concurrent_streams
        self.broker = broker

    async def check_rate(self, key_id: str) -> None:
        """Count one API call of `key_id`; raise 429 (with Retry-After) once the window's allowance is used up."""
        if self.rate is None or key_id == MASTER_KEY_ID:
            return
        limit, window = self.rate
        hits, remaining = await self.broker.hit_rate(f"rate:{key_id}", window)
        if hits > limit:
            raise RateLimited(
                f"this API key made more than {limit} requests in {window:g}s "
                f"(SLUICE_RATE_LIMIT); retry after {math.ceil(remaining)}s",
                retry_after=remaining,
            )

    async def open_stream(self, key_id: str | None) -> StreamSlot:
        """Take a stream slot of `key_id` (None: a stream no key is known for, not limited); 429 when all are held."""
        if self.max_streams is None or key_id is None or key_id == MASTER_KEY_ID:
            return StreamSlot()
        key = f"streams:{key_id}"
        token = await self.broker.acquire_slot(key, self.max_streams, SLOT_TTL)
        if token is None:
            raise RateLimited(
                f"this API key already has {self.max_streams} streams open "
                "(SLUICE_MAX_CONCURRENT_STREAMS); close one or retry later",
                retry_after=1,
                code="too_many_streams",
            )
        return StreamSlot(self.broker, key, token)
