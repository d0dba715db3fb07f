"""The API-key cache: entries expire after their TTL, a revoked key is forgotten at once, the size is bounded."""

from __future__ import annotations

from sluice.keycache import KeyCache


def test_entries_expire_and_revoked_keys_are_forgotten() -> None:
    now = [100.0]
    cache: KeyCache[str] = KeyCache(ttl=5.0, clock=lambda: now[0])
    cache.put("hash-a", "key_a", "principal-a")
    cache.put("hash-b", "key_b", "principal-b")
    assert cache.get("hash-a") == "principal-a"
    cache.forget("key_a")
    assert cache.get("hash-a") is None and cache.get("hash-b") == "principal-b"
    now[0] += 5.0
    assert cache.get("hash-b") is None


def test_size_is_bounded() -> None:
    cache: KeyCache[int] = KeyCache(max_entries=3)
    for index in range(10):
        cache.put(f"hash-{index}", f"key_{index}", index)
    assert cache.get("hash-9") == 9
    assert sum(cache.get(f"hash-{i}") is not None for i in range(10)) <= 3
