import asyncio

from sluice.broker.memory import MemoryBroker
from sluice.events import DeltaEvent, ErrorEvent, ResponseEvent, StatusEvent


async def test_append_numbers_events_and_accepts_one_terminal() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    first = await broker.append("c", StatusEvent(status="queued"))
    second = await broker.append("c", ResponseEvent(data={"a": 1}))
    late = await broker.append("c", ErrorEvent(code="x", message="too late"))
    assert (first.seq, second.seq, late) == (1, 2, None)
    info = await broker.log_info("c")
    assert (info.first_seq, info.last_seq, info.finished) == (1, 2, True)


async def test_open_log_floor_applies_only_to_an_empty_log() -> None:
    broker = MemoryBroker()
    await broker.open_log("c", next_seq=500)
    assert (await broker.append("c", StatusEvent(status="queued"))).seq == 500
    await broker.open_log("c", next_seq=900)
    assert (await broker.append("c", StatusEvent(status="running"))).seq == 501


async def test_subscription_replays_then_follows_and_times_out_empty() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    for text in "abc":
        await broker.append("c", DeltaEvent(text=text))
    subscription = broker.subscribe("c", after=1)
    assert [e.seq for e in await subscription.next_batch(1)] == [2, 3]
    assert await subscription.next_batch(0.01) == []
    waiting = asyncio.create_task(subscription.next_batch(5))
    await asyncio.sleep(0)
    await broker.append("c", DeltaEvent(text="d"))
    batch = await asyncio.wait_for(waiting, 1)
    assert [e.event for e in batch] == [DeltaEvent(text="d", ts=batch[0].event.ts)]


async def test_finished_log_expires_after_retention() -> None:
    broker = MemoryBroker(retention_seconds=0.01)
    await broker.append("c", ResponseEvent(data=None))
    async with asyncio.timeout(2):
        while await broker.log_info("c") is not None:
            await asyncio.sleep(0.005)


async def test_queue_hands_out_jobs_in_order() -> None:
    broker = MemoryBroker()
    await broker.enqueue("r1")
    await broker.enqueue("r2")
    assert (await broker.dequeue()).request_id == "r1"
    assert (await broker.dequeue()).request_id == "r2"


async def test_a_wait_lasts_at_least_its_time_and_not_much_longer() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    subscription = broker.subscribe("c", after=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await subscription.next_batch(0.2) == []
    assert 0.2 <= loop.time() - started < 0.2 * 1.125 + 0.1  # a sweep every wait/8, plus a loaded machine's delay
    assert await subscription.next_batch(0) == []  # 0: what is held right now, no waiting


async def test_one_append_wakes_every_waiting_subscriber_and_leaves_no_waiter_behind() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    subscriptions = [broker.subscribe("c", after=0) for _ in range(50)]
    waits = [asyncio.create_task(s.next_batch(30)) for s in subscriptions]
    await asyncio.sleep(0)
    await broker.append("c", DeltaEvent(text="a"))
    batches = await asyncio.wait_for(asyncio.gather(*waits), 1)
    assert all([e.seq for e in batch] == [1] for batch in batches)
    # Nothing is left for the sweep or the next append to wake (no growth on a busy channel).
    assert not broker._logs["c"].waiting and not broker._sweepers[30].waiting


async def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    waiting = asyncio.create_task(broker.subscribe("c", after=0).next_batch(30))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert not broker._logs["c"].waiting and not broker._sweepers[30].waiting
    await broker.aclose()


async def test_a_sealed_log_takes_only_its_terminal_event() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    await broker.append("c", DeltaEvent(text="a"))
    assert await broker.seal("c") == 1 and await broker.seal("missing") is None
    assert await broker.append("c", DeltaEvent(text="b")) is None  # a cancel is ending it: nothing more streams
    end = await broker.append("c", ErrorEvent(code="cancelled", message="cancelled"))
    assert end is not None and end.seq == 2


async def test_watched_counts_the_open_subscriptions() -> None:
    broker = MemoryBroker()
    await broker.open_log("c")
    assert await broker.watched("c") is False
    first, second = broker.subscribe("c", 0), broker.subscribe("c", 0)
    assert await broker.watched("c") is True
    first.close()
    first.close()  # closing twice counts once
    assert await broker.watched("c") is True
    second.close()
    assert await broker.watched("c") is False


async def test_a_cancel_announced_reaches_the_handler() -> None:
    broker = MemoryBroker()
    heard: list[tuple[str, str | None, str]] = []
    broker.on_cancel(lambda *cancel: heard.append(cancel))
    await broker.announce_cancel("r1", "p1", "api")
    assert heard == [("r1", "p1", "api")]
