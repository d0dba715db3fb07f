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
    assert [e.as_dict()["text"] for e in batch] == ["d"]


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
