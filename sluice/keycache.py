"""A small TTL cache of authenticated API keys, so the hot path does not read the store on every request.

Keyed by the key's SHA-256 (the plaintext is never kept). Only keys found valid are cached: an unknown key always
goes to the store, so random keys cannot fill the cache. A revoke through this instance drops the key at once
(`forget`); a revoke through another instance (scale-out) takes effect here within `ttl` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class KeyCache(Generic[Value]):
    def __init__(
        self, ttl: float = 5.0, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, str, Value]] = {}  # key hash -> (expires, key id, value)

    def get(self, key_hash: str) -> Value | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key_hash]
            return None
        return entry[2]

    def put(self, key_hash: str, key_id: str, value: Value) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare (that many live keys within `ttl`); a full refill is cheap and bounded
        self._entries[key_hash] = (self.clock() + self.ttl, key_id, value)

    def forget(self, key_id: str) -> None:
        """Drop a revoked key (by its id: the plaintext is gone by the time it is revoked)."""
        for key_hash in [h for h, (_, kid, _) in self._entries.items() if kid == key_id]:
            del self._entries[key_hash]

    def clear(self) -> None:
        self._entries.clear()
