"""The in-process quota counters: fixed rate windows and stream slots."""

from sluice.broker.counters import MemoryCounters


async def test_rate_windows_count_and_reset() -> None:
    moment = [100.0]
    counters = MemoryCounters(clock=lambda: moment[0])
    assert [(await counters.hit_rate("k", 60))[0] for _ in range(3)] == [1, 2, 3]
    hits, remaining = await counters.hit_rate("other", 60)
    assert hits == 1 and remaining == 20.0  # window [60, 120)
    moment[0] = 120.0
    assert (await counters.hit_rate("k", 60))[0] == 1


async def test_slots_are_limited_and_released_once() -> None:
    counters = MemoryCounters()
    first, second = await counters.acquire_slot("k", 2, 60), await counters.acquire_slot("k", 2, 60)
    assert first and second and await counters.acquire_slot("k", 2, 60) is None
    await counters.release_slot("k", first)
    await counters.release_slot("k", first)  # idempotent
    assert await counters.acquire_slot("k", 2, 60) is not None
    assert await counters.acquire_slot("k", 2, 60) is None
