"""`cancel_when_unwatched_for`: `until_unwatched` on a fake clock (it returns only after a whole period in which
every look found nobody), then through a gateway: nobody watching cancels, a watcher does not, and a hundred page
reloads and dropped sockets mid-stream never cancel anything."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sluice.testing import Script
from sluice.unwatched import until_unwatched
from tests.cancelling import SLOW, Slow, follow, one_terminal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def watch(answers: list[bool | Exception | None], period: float = 30.0) -> float:
    """Run `until_unwatched` against these looks (then nobody); the fake time at which it returned."""
    clock = Clock()
    looks = iter(answers)

    async def watched() -> bool | None:
        answer = next(looks, False)
        if isinstance(answer, Exception):
            raise answer
        return answer

    await until_unwatched(watched, period, clock=clock, sleep=clock.sleep)
    return clock.now


async def test_nobody_from_the_start_cancels_after_the_period() -> None:
    assert await watch([]) == 30.0  # a look every 5 s: the sixth has found nobody for 30 s


async def test_a_watcher_restarts_the_period_and_doubt_counts_as_watching() -> None:
    # Looks at 5 (nobody), 10 (watched), 15 (cannot tell: counted as watched), 20 (broker down: the same).
    assert await watch([False, True, None, RuntimeError("redis down")]) == 20.0 + 30.0


async def test_a_short_period_is_looked_at_four_times() -> None:
    assert await watch([True], period=2.0) == 0.5 + 2.0


async def test_it_waits_as_long_as_someone_watches() -> None:
    clock = Clock()

    async def always() -> bool:
        return True

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            while True:  # the fake clock runs far past the period, the look always finds someone
                await until_unwatched(always, 1.0, clock=clock, sleep=lambda s: asyncio.sleep(0))


# Through a gateway: the browser's side. ------------------------------------------------------------------------


async def test_a_run_nobody_watches_is_cancelled_after_the_workflows_period(slow: Slow) -> None:
    slow.fake.script(SLOW)
    accepted = await slow.submit("slow_unwatched")  # cancel_when_unwatched_for: 1s; no browser ever connects
    hangup = await slow.fake.wait_hangup(within=3.0)
    async with slow.client() as client:
        record = (await client.get(f"/v1/requests/{accepted['request_id']}")).json()
    assert record["status"] == "cancelled" and record["meta"]["cancel_reason"] == "unwatched"
    assert record["data"]["content"].startswith("word0") and hangup.chunks > 0
    async with follow(accepted) as late:  # whoever looks later is told
        assert one_terminal(await late.to_the_end())["code"] == "cancelled"


async def test_a_run_someone_watches_is_not_cancelled(slow: Slow) -> None:
    slow.fake.script(Script(chunk_delay=0.05, chunks=40))  # two seconds: twice the period
    accepted = await slow.submit("slow_unwatched")
    async with follow(accepted) as browser:
        terminal = one_terminal(await browser.to_the_end())
    assert terminal["type"] == "response" and slow.fake.hangups == []


@pytest.mark.parametrize("workflow", ["slow", "slow_unwatched"])
async def test_a_hundred_reloads_and_dropped_sockets_mid_stream_cancel_nothing(slow: Slow, workflow: str) -> None:
    slow.fake.script(Script(chunk_delay=0.02, chunks=100))  # ~2 s, longer than the reloads take
    accepted = await slow.submit(workflow)
    async with follow(accepted) as first:
        await first.until(1)
        last = first.events[-1]["seq"]
    async with httpx.AsyncClient(timeout=10) as http:
        for reload in range(100):
            # Each page resumes from the last event it had (so it is sent again at once), then goes away without
            # waiting for a close handshake, as a page that unloads does.
            if reload % 3 != 2:
                async with follow(accepted, after=last - 1) as browser:
                    await browser.until(1)
                    if reload % 3 == 0:
                        browser.ws.transport.close()  # the page reloads: its connection closes
                    else:
                        browser.ws.transport.abort()  # the network drops
            else:  # an EventSource page, resumed with Last-Event-ID, then reloaded
                url = f"{slow.gw.url}/v1/channels/{accepted['channel_id']}/events"
                headers = {"Last-Event-ID": str(last - 1)}
                async with http.stream("GET", url, params={"token": accepted["ws_token"]}, headers=headers) as sse:
                    lines = sse.aiter_lines()
                    while not (await anext(lines)).startswith("id: "):
                        pass
    async with follow(accepted, after=last) as browser:
        events = await browser.to_the_end(wait=10)
    terminal = one_terminal(events)
    assert any(e["type"] == "delta" for e in events), "the stream ended before the reloads did: make it longer"
    assert terminal["type"] == "response" and slow.fake.hangups == []
    assert terminal["data"]["content"] == slow.fake.text  # whole: nothing was cut short
