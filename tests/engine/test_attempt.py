"""Per-attempt deadlines, on in-memory streams (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sluice.engine.attempt import Deadlines, within_deadlines
from sluice.providers.base import Chunk
from sluice.providers.errors import ProviderTimeout, StreamBroken
from sluice.providers.messages import ThinkingDelta


def paced(*steps: tuple[float, str]) -> tuple[AsyncIterator[Chunk], list[str]]:
    """A stream that waits `delay` then yields `text` per step; records whether it was closed."""
    closed: list[str] = []

    async def stream() -> AsyncIterator[Chunk]:
        try:
            for delay, text in steps:
                await asyncio.sleep(delay)
                yield Chunk(text=text)
        finally:
            closed.append("closed")

    return stream(), closed


async def drain(stream: AsyncIterator[Chunk], deadlines: Deadlines) -> str:
    return "".join([c.text async for c in within_deadlines(stream, deadlines, "p/m")])


FAST = Deadlines(first_token=0.2, idle=0.1, total=1.0)


async def test_a_healthy_stream_passes() -> None:
    stream, _ = paced((0.05, "a"), (0.05, "b"), (0.05, "c"))
    assert await drain(stream, Deadlines(first_token=1, idle=1, total=5)) == "abc"


async def test_first_token_deadline() -> None:
    stream, closed = paced((0.5, "late"))
    with pytest.raises(ProviderTimeout, match=r"no first token within 0\.2s"):
        await drain(stream, FAST)
    assert closed == ["closed"]  # the provider's stream (and its connection) is released


async def test_first_token_deadline_waits_for_text_not_metadata() -> None:
    stream, _ = paced((0.0, ""), (0.15, ""), (0.15, "text"))
    with pytest.raises(ProviderTimeout, match="first token"):
        await drain(stream, FAST)


async def test_idle_gap_after_the_first_token() -> None:
    stream, closed = paced((0.0, "a"), (0.02, "b"), (1.0, "stalled"))
    with pytest.raises(ProviderTimeout, match="stalled"):
        await drain(stream, Deadlines(first_token=1, idle=0.25, total=5))
    assert closed == ["closed"]


async def test_total_deadline() -> None:
    stream, _ = paced(*[(0.05, "x")] * 30)  # never idle for long, but 1.5 s in all
    with pytest.raises(ProviderTimeout, match=r"no complete answer within 0\.6s"):
        await drain(stream, Deadlines(first_token=0.5, idle=0.5, total=0.6))


async def test_an_adapter_bug_fails_the_attempt_not_the_request() -> None:
    async def broken() -> AsyncIterator[Chunk]:
        yield Chunk(text="a")
        raise KeyError("choices")

    with pytest.raises(StreamBroken, match="unexpected response"):
        await drain(broken(), FAST)


async def test_reasoning_counts_as_the_first_token() -> None:
    """A model that thinks has begun: after its reasoning the idle deadline applies, not the first-token one."""

    async def stream() -> AsyncIterator[Chunk]:
        await asyncio.sleep(0.1)
        yield Chunk(thinking=(ThinkingDelta(0, text="hmm"),))
        await asyncio.sleep(0.3)  # past first_token (0.3 in all), within idle (0.5)
        yield Chunk(text="answer")

    deadlines = Deadlines(first_token=0.3, idle=0.5, total=5)
    assert await drain(stream(), deadlines) == "answer"
