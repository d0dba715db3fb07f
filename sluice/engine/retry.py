"""When to try the same provider again, and how long to wait first. Pure: no I/O, randomness injected."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sluice.providers.errors import ProviderError


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 1  # further tries on the same provider after a `retry_same` error
    base_delay: float = 0.25
    max_delay: float = 4.0
    # A provider that asks for a longer pause than this is left for the next one rather than waited for.
    max_retry_after: float = 10.0

    def delay(self, error: ProviderError, retry: int, rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before retry number `retry` (1-based) on the same provider, or None: move on."""
        if not error.retry_same or retry > self.retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        # Exponential backoff with full jitter: concurrent requests that failed together do not retry together.
        return rand() * min(self.max_delay, self.base_delay * 2 ** (retry - 1))
