"""The Redis broker against the machine's real Redis: each test uses its own key prefix and deletes it afterwards.

Two `RedisBroker` objects on one prefix play two gateway instances.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from sluice.broker.errors import LogLost
from sluice.events import DeltaEvent, ErrorEvent, ResponseEvent, StatusEvent

REDIS_URL = os.environ.get("SLUICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

redis = pytest.importorskip("redis")

from sluice.broker.redis import RedisBroker, split_url  # noqa: E402
from tests.backends import PrivateRedis  # noqa: E402

MakeBroker = Callable[..., Awaitable[RedisBroker]]


@pytest.fixture
async def make_broker() -> AsyncIterator[MakeBroker]:
    prefix = f"sluice-test-{uuid.uuid4().hex[:12]}:"
    brokers: list[RedisBroker] = []

    async def make(**options: float) -> RedisBroker:
        options.setdefault("check_interval", 0.2)
        broker = RedisBroker(REDIS_URL, retention_seconds=60, key_prefix=prefix, **options)
        try:
            await broker.start()
        except redis.exceptions.ConnectionError:
            pytest.skip(f"no Redis at {REDIS_URL}")
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:  # closed first: a running broker would take the deletion for data loss and rebuild
        await broker.aclose()
    if brokers:
        cleaner = RedisBroker(REDIS_URL, key_prefix=prefix)
        await cleaner.delete_all()
        await cleaner.redis.aclose()


def test_url_options_are_taken_out_of_the_redis_url() -> None:
    url, options = split_url("redis://h:6379/2?key_prefix=a:&visibility_timeout=5&socket_timeout=3")
    assert url == "redis://h:6379/2?socket_timeout=3"
    assert options == {"key_prefix": "a:", "visibility_timeout": "5"}


async def test_events_are_numbered_and_only_one_terminal_is_accepted(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.open_log("ch")
    first = await a.append("ch", StatusEvent(status="queued"))
    second = await b.append("ch", DeltaEvent(text='he said "hi"'))
    assert first is not None and second is not None
    assert (first.seq, second.seq) == (1, 2)
    assert orjson.loads(second.data)["text"] == 'he said "hi"' and orjson.loads(second.data)["seq"] == 2
    done = await b.append("ch", ResponseEvent(data={"ok": True}))
    assert done is not None and done.terminal and done.seq == 3
    assert await a.append("ch", ErrorEvent(code="late", message="too late")) is None
    assert await a.append("ch", DeltaEvent(text="x")) is None
    info = await a.log_info("ch")
    assert info is not None and (info.first_seq, info.last_seq, info.finished) == (1, 3, True)
    # Kept for the retention window after the terminal event, then gone.
    ttl = await a.redis.ttl(a.keys.log("ch"))
    assert 0 < ttl <= 60


async def test_concurrent_writers_on_two_instances_get_distinct_contiguous_seqs(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.open_log("ch")

    async def write(broker: RedisBroker, n: int) -> list[int]:
        return [(await broker.append("ch", DeltaEvent(text=str(i)))).seq for i in range(n)]  # type: ignore[union-attr]

    seqs_a, seqs_b = await asyncio.gather(write(a, 100), write(b, 100))
    assert sorted(seqs_a + seqs_b) == list(range(1, 201))
    terminals = await asyncio.gather(
        *(broker.append("ch", ResponseEvent(data=i)) for i, broker in enumerate([a, b, a, b]))
    )
    assert len([t for t in terminals if t is not None]) == 1


async def test_open_log_floor_applies_only_to_an_empty_log(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    await broker.open_log("fresh", next_seq=10_001)
    assert (await broker.append("fresh", StatusEvent(status="queued"))).seq == 10_001  # type: ignore[union-attr]
    for key in (broker.keys.log("fresh"), broker.keys.meta("fresh")):  # an abandoned log does not stay forever
        assert await broker.redis.ttl(key) > 3600
    await broker.open_log("fresh", next_seq=50_000)  # has events: the floor does not move
    assert (await broker.append("fresh", StatusEvent(status="running"))).seq == 10_002  # type: ignore[union-attr]
    assert await broker.log_info("never-opened") is None


async def test_subscriber_on_another_instance_replays_then_follows_live(make_broker: MakeBroker) -> None:
    writer, reader = await make_broker(), await make_broker()
    await writer.open_log("ch")
    for i in range(3):
        await writer.append("ch", DeltaEvent(text=str(i)))
    subscription = reader.subscribe("ch", after=1)
    assert [e.seq for e in await subscription.next_batch(1.0)] == [2, 3]

    async def later() -> float:
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await writer.append("ch", DeltaEvent(text="live"))
        return started

    task = asyncio.create_task(later())
    batch = await subscription.next_batch(5.0)
    woke = time.perf_counter()
    started = await task
    assert [e.seq for e in batch] == [4]
    assert woke - started < 0.5, "a live event must wake the subscriber at once, not at its timeout"
    assert await subscription.next_batch(0.2) == []
    subscription.close()


async def test_many_subscribers_share_one_pubsub_connection(make_broker: MakeBroker) -> None:
    writer, reader = await make_broker(), await make_broker()
    channels = [f"ch{i}" for i in range(50)]
    for channel in channels:
        await writer.open_log(channel)
    subscriptions = [reader.subscribe(channel, after=0) for channel in channels]
    waits = [asyncio.create_task(s.next_batch(5.0)) for s in subscriptions]
    pool = reader.redis.connection_pool
    async with asyncio.timeout(5):  # every subscriber has replayed its (empty) log and waits for live events…
        while True:
            watched = reader.feed._watched
            if len(watched) == len(channels) and len(pool._in_use_connections) <= 1:  # the pub/sub one
                break
            await asyncio.sleep(0.02)
    assert not any(w.done() for w in waits)  # …holding no Redis connection while it waits
    for channel in channels:
        await writer.append(channel, ResponseEvent(data=channel))
    async with asyncio.timeout(5):
        batches = await asyncio.gather(*waits)
    assert [b[0].event.data for b in batches] == channels  # type: ignore[attr-defined]
    # Each channel has one subscription on Redis: the reader's one pub/sub connection.
    numsub = await writer.redis.pubsub_numsub(*(reader.keys.notify(c) for c in channels))
    assert {count for _name, count in numsub} == {1}
    for s in subscriptions:
        s.close()


async def test_jobs_are_delivered_once_and_not_enqueued_twice_while_held(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.enqueue("r1")
    await b.enqueue("r1")  # already held by the stream: no second entry
    job = await asyncio.wait_for(a.dequeue(), 5)
    assert job.request_id == "r1"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.dequeue(), 1.5)
    await a.ack(job)
    await b.enqueue("r1")  # acknowledged: a new enqueue is a new job
    assert (await asyncio.wait_for(b.dequeue(), 5)).request_id == "r1"


async def test_a_dead_workers_job_is_claimed_but_a_live_workers_is_not(make_broker: MakeBroker) -> None:
    alive, dying, other = [await make_broker(visibility_timeout=0.6) for _ in range(3)]
    await alive.enqueue("kept")
    kept = await asyncio.wait_for(alive.dequeue(), 5)
    await dying.enqueue("orphan")
    orphan = await asyncio.wait_for(dying.dequeue(), 5)
    await dying.aclose()  # stops keeping its job fresh, as a SIGKILLed process would
    taken = await asyncio.wait_for(other.dequeue(), 10)
    assert taken.request_id == "orphan" and taken.receipt == orphan.receipt
    # `alive` keeps its job fresh: three visibility timeouts later nobody has taken it.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(other.dequeue(), 2.0)
    await alive.ack(kept)
    await other.ack(taken)
    assert await other.redis.xlen(other.keys.jobs) == 0


async def test_consumers_of_stopped_instances_are_forgotten_once_they_hold_nothing(make_broker: MakeBroker) -> None:
    stopped, busy, pruner = await make_broker(), await make_broker(), await make_broker()
    for broker, request_id in ((stopped, "done"), (busy, "running")):
        await broker.enqueue(request_id)
        job = await asyncio.wait_for(broker.dequeue(), 5)
        if broker is stopped:
            await broker.ack(job)
    await stopped.aclose()
    await pruner._prune_consumers(idle_ms=0)
    names = {c["name"] for c in await pruner.redis.xinfo_consumers(pruner.keys.jobs, "workers")}
    assert stopped.consumer not in names and busy.consumer in names  # one holding a job stays: it may be claimed


async def test_a_job_whose_run_crashed_is_released_and_run_again(make_broker: MakeBroker) -> None:
    broker = await make_broker(visibility_timeout=0.6)
    await broker.enqueue("crashes")

    async def worker() -> list[str]:
        seen = []
        for _ in range(2):  # the first run "crashes" (no ack); the next dequeue releases it
            seen.append((await broker.dequeue()).request_id)
        return seen

    assert await asyncio.wait_for(worker(), 10) == ["crashes", "crashes"]


async def test_data_loss_is_noticed_and_fences_runs_from_before_it(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.open_log("r1")
    await a.enqueue("r1")
    loss_noticed = asyncio.create_task(b.wait_for_data_loss())

    async def run() -> None:
        job = await a.dequeue()
        assert job.request_id == "r1"
        await a.append("r1", StatusEvent(status="running"))
        await a.delete_all()  # what FLUSHALL or a restart without persistence does to this deployment
        await a.open_log("r1", next_seq=10_001)  # recovery reopens the log…
        await asyncio.sleep(0.5)
        with pytest.raises(LogLost):  # …but the run from before the loss may not write into it
            await a.append("r1", DeltaEvent(text="stale"))

    await asyncio.wait_for(run(), 10)
    await asyncio.wait_for(loss_noticed, 10)
    assert await a.log_info("r1") is not None
    assert (await b.append("r1", StatusEvent(status="queued"))).seq == 10_001  # type: ignore[union-attr]
    # The group is back: a job enqueued after the loss is delivered.
    await b.enqueue("r1")
    assert (await asyncio.wait_for(b.dequeue(), 5)).request_id == "r1"


async def test_tasks_a_run_started_are_not_fenced_with_it(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    await broker.open_log("r1")
    await broker.enqueue("r1")

    async def run() -> asyncio.Task[object]:
        await broker.dequeue()
        timer = asyncio.Event()

        async def later() -> object:  # e.g. the callback step's timer: it outlives the run, with its context
            await timer.wait()
            return await broker.append("r1", StatusEvent(status="completed"))

        spawned = asyncio.create_task(later())
        await broker.delete_all()
        assert await broker.open_log("r1", next_seq=10_001) is True  # recovery reopens the log (once)
        assert await broker.open_log("r1", next_seq=10_001) is False
        await asyncio.sleep(0.5)  # the loss is noticed
        with pytest.raises(LogLost):
            await broker.append("r1", DeltaEvent(text="stale"))  # the run itself is fenced…
        timer.set()
        return spawned

    spawned = await asyncio.wait_for(run(), 10)
    assert (await asyncio.wait_for(spawned, 5)).seq == 10_001  # type: ignore[attr-defined]  # …what it started is not


async def test_append_to_a_vanished_log_raises(make_broker: MakeBroker) -> None:
    broker = await make_broker()
    with pytest.raises(LogLost):
        await broker.append("nobody-opened-this", StatusEvent(status="queued"))


async def test_breaker_state_is_shared_and_expires(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    assert await b.breaker_state("openai/gpt") is None
    await a.set_breaker_state("openai/gpt", {"state": "open", "failures": 5}, ttl=0.3)
    assert await b.breaker_state("openai/gpt") == {"state": "open", "failures": 5}
    assert 0 < await b.redis.pttl(b.keys.breaker("openai/gpt")) <= 300  # Redis drops it when the cool-down ends


async def test_rate_windows_are_shared_by_every_instance(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    counts = [await broker.hit_rate("key-1", 2.0) for broker in (a, b, a)]
    if counts[-1][0] != 3:  # the three hits straddled a window boundary: count again in the fresh window
        counts = [await broker.hit_rate("key-1", 2.0) for broker in (a, b, a)]
    assert [hits for hits, _ in counts] == [counts[0][0], counts[0][0] + 1, counts[0][0] + 2]
    assert all(0 < remaining <= 2.0 for _, remaining in counts)
    assert (await b.hit_rate("key-2", 2.0))[0] == 1  # keys are counted apart


async def test_slots_are_shared_released_and_expire(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    first = await a.acquire_slot("streams", 2, ttl=60)
    second = await b.acquire_slot("streams", 2, ttl=0.3)
    assert first and second and first != second
    assert await a.acquire_slot("streams", 2, ttl=60) is None  # both held, on two instances
    await a.release_slot("streams", first)
    third = await b.acquire_slot("streams", 2, ttl=60)
    assert third is not None
    # `second` is never released (its instance "died"): it frees itself once its ttl passes.
    async with asyncio.timeout(5):
        while True:
            if await a.acquire_slot("streams", 2, ttl=60) is not None:
                break
            await asyncio.sleep(0.05)


async def test_redis_restarted_without_persistence(private_redis: PrivateRedis) -> None:
    a = RedisBroker(private_redis.url, check_interval=0.2, visibility_timeout=1)
    b = RedisBroker(private_redis.url, check_interval=0.2, visibility_timeout=1)
    await a.start()
    await b.start()
    try:
        await a.open_log("ch")
        await a.append("ch", StatusEvent(status="queued"))
        subscription = b.subscribe("ch", after=0)
        assert [e.seq for e in await subscription.next_batch(1.0)] == [1]
        loss_noticed = asyncio.create_task(b.wait_for_data_loss())
        private_redis.kill()
        await private_redis.start()  # empty: it kept nothing
        await asyncio.wait_for(loss_noticed, 15)
        assert await b.log_info("ch") is None
        # Both instances work again on the new server: the log reopened past the old numbers reaches the old
        # subscriber through the re-established pub/sub connection, and jobs flow.
        await a.open_log("ch", next_seq=10_001)
        waiting = asyncio.create_task(subscription.next_batch(10.0))
        await a.append("ch", StatusEvent(status="queued"))
        assert [e.seq for e in await asyncio.wait_for(waiting, 10)] == [10_001]
        await a.enqueue("r1")
        assert (await asyncio.wait_for(b.dequeue(), 10)).request_id == "r1"
        subscription.close()
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_sealed_log_takes_only_its_terminal_event(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.open_log("ch")
    await a.append("ch", DeltaEvent(text="a"))
    assert await b.seal("ch") == 1 and await b.seal("missing") is None
    assert await a.append("ch", DeltaEvent(text="b")) is None  # the instance that runs it learns it ended
    end = await a.append("ch", ErrorEvent(code="cancelled", message="cancelled"))
    assert end is not None and end.seq == 2


async def test_watched_sees_a_subscriber_on_another_instance(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    await a.open_log("ch")
    await a.append("ch", StatusEvent(status="running"))
    assert await a.watched("ch") is False
    subscription = b.subscribe("ch", 0)
    assert [e.seq for e in await subscription.next_batch(1.0)] == [1]  # following it: B listens for its events
    assert await a.watched("ch") is True
    subscription.close()
    async with asyncio.timeout(5):  # B's feed unsubscribes within a read of its pub/sub connection
        while await a.watched("ch"):
            await asyncio.sleep(0.05)
    reader = b.subscribe("ch", 0)
    assert [e.seq for e in await reader.next_batch(0)] == [1]  # a read that waits for nothing is not watching
    assert await a.watched("ch") is False
    reader.close()


async def test_a_cancel_announced_by_one_instance_is_heard_by_every_instance(make_broker: MakeBroker) -> None:
    a, b = await make_broker(), await make_broker()
    heard: dict[str, asyncio.Queue[tuple[str, str | None, str]]] = {"a": asyncio.Queue(), "b": asyncio.Queue()}
    a.on_cancel(lambda *cancel: heard["a"].put_nowait(cancel))
    b.on_cancel(lambda *cancel: heard["b"].put_nowait(cancel))
    await b.announce_cancel("r1", None, "unwatched")
    async with asyncio.timeout(5):
        assert await heard["a"].get() == ("r1", None, "unwatched")
        assert await heard["b"].get() == ("r1", None, "unwatched")
