""" "Test connection": one tiny streamed request through the provider's real adapter, outside any workflow."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from sluice.providers.base import Message, ProviderRequest
from sluice.providers.config import ProviderConfig
from sluice.providers.errors import ProviderError
from sluice.providers.pool import ProviderPool
from sluice.workflows.model import Catalog

PROBE_TIMEOUT = 20.0
PROBE_PROMPT = "Reply with the single word: pong"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float
    sample: str = ""
    error_code: str | None = None
    error_message: str | None = None


async def probe(config: ProviderConfig, model: str, limit: float = PROBE_TIMEOUT) -> ProbeResult:
    """Stream until the first text arrives (or the stream ends): proof of credentials, URL and model name."""
    pool = ProviderPool(Catalog(providers={config.name: config}, workflows={}))
    started = time.perf_counter()
    request = ProviderRequest(
        model=model,
        messages=(Message(role="user", content=PROBE_PROMPT),),
        params={"max_tokens": 8},
        connect_timeout=min(10.0, limit),
    )
    sample = ""
    try:
        async with asyncio.timeout(limit), contextlib.aclosing(pool.get(config.name).stream(request)) as stream:
            async for chunk in stream:
                sample += chunk.text
                if sample:
                    break  # aclosing ends the provider's stream (and its HTTP response) here
    except ProviderError as exc:
        return ProbeResult(ok=False, latency_ms=_ms(started), error_code=exc.code, error_message=exc.message)
    except TimeoutError:
        return ProbeResult(
            ok=False, latency_ms=_ms(started), error_code="timeout", error_message=f"no answer within {limit:.0f}s"
        )
    finally:
        await pool.aclose()
    return ProbeResult(ok=True, latency_ms=_ms(started), sample=sample[:200])


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
