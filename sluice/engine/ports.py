"""What the run loop needs from the rest of the gateway, as small protocols: the engine does no I/O of its own.

The worker and the pass-through plug in the real parts (the channel writer over the broker, the store or the
write-behind request log, the broker's shared breaker records, the provider pool); the engine's unit tests plug in
lists and dicts (tests/engine/test_run_loop.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sluice.engine.breaker import BreakerPolicy
from sluice.lifecycle.ports import ChannelWriter
from sluice.providers.base import Provider, Usage
from sluice.spend.prices import Priced

__all__ = ["AttemptLog", "AttemptRecord", "BreakerStates", "ChannelWriter", "Pricing", "Providers"]


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One provider attempt of a request, as the request log keeps it (the `attempts` table)."""

    request_id: str
    attempt: int
    provider: str
    model: str
    status: str  # succeeded | failed | skipped (its breaker was open) | cancelled (the request was, meanwhile)
    started_at: datetime
    duration_ms: float
    ttft_ms: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    usage_estimated: bool = False  # the provider reported no usage: counted from the text (`sluice.spend.usage`)
    cost_usd: float | None = None
    price_source: str | None = None  # `sluice.spend.prices`: genai-prices | override | free | unknown

    @classmethod
    def spending(cls, usage: Usage, priced: Priced, **fields: Any) -> AttemptRecord:
        """An attempt with its usage and what it cost."""
        return cls(
            **fields,
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
            cache_read_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            usage_estimated=usage.estimated,
            cost_usd=priced.cost_usd,
            price_source=priced.source,
        )


class AttemptLog(Protocol):
    async def record_attempt(self, attempt: AttemptRecord) -> None: ...


class BreakerStates(Protocol):
    """Circuit-breaker records shared by every instance (the broker holds them)."""

    async def breaker_state(self, key: str) -> dict[str, Any] | None: ...

    async def set_breaker_state(self, key: str, state: dict[str, Any], ttl: float) -> None: ...


class Providers(Protocol):
    """The configured providers (`sluice.providers.pool.ProviderPool`)."""

    def get(self, name: str) -> Provider: ...

    def dialect(self, name: str) -> str:
        """How the provider is asked for schema-shaped output (`sluice.structured.native`)."""
        ...

    def continuation(self, name: str) -> str:
        """How an answer cut mid-stream is continued on the provider: prefill | instruction | off
        (`sluice.engine.continuation`)."""
        ...

    def breaker_policy(self, name: str) -> BreakerPolicy: ...


class Pricing(Protocol):
    """What an attempt cost (`sluice.spend.prices.Prices`)."""

    def price(self, provider: str, model: str, usage: Usage, at: datetime | None = None) -> Priced: ...
