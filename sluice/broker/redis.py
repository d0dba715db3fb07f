"""The Redis broker: for several identical `sluice serve` instances sharing one Redis (DESIGN.md §1, §7).

- Jobs: one stream read through one consumer group. An instance reads only as many jobs as it has idle workers, keeps
  the ones it runs fresh (their idle time is reset every few seconds) and acknowledges a job once its terminal state
  is in the store. The jobs of an instance that died go idle and are claimed by another after `visibility_timeout`.
- Channel logs: a stream per channel whose entry ids are the seqs (`<seq>-0`), appended by a Lua script that also
  refuses a second terminal event and publishes a wake-up; kept `retention_seconds` after the terminal event.
- Live delivery: see `redis_feed` (one pub/sub connection per instance, XRANGE from each subscriber's cursor). The
  same connection hears the cancels every instance announces (`announce_cancel`), and Redis's count of the
  instances subscribed to a channel's notifications says whether anyone watches it (`watched`).
- Data loss: an `epoch` key is written once; when it disappears (FLUSHALL, a restart without persistence), every
  instance notices within `check_interval`, fences the runs it had in flight (their next append raises `LogLost`)
  and the worker re-queues every unfinished request from the store (`wait_for_data_loss`).

Options come from keyword arguments or the URL's query string, which is how several processes get the same ones:
`redis://host:6379/0?key_prefix=sluice:&visibility_timeout=30&check_interval=2`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sluice.broker import redis_scripts as scripts
from sluice.broker.base import CancelHandler, Job, LogInfo
from sluice.broker.errors import LogLost
from sluice.broker.keys import DEFAULT_PREFIX, GROUP, Keys
from sluice.broker.redis_feed import Feed, RedisSubscription
from sluice.events import Event, WireEvent
from sluice.spend.limits import Allowance, Hold, Refusal, Reservation

log = logging.getLogger("sluice.broker.redis")

OPTIONS = ("key_prefix", "visibility_timeout", "check_interval")
_OPEN_LOG_TTL = 7 * 24 * 3600  # an unfinished log outlives any run; the store decides what is unfinished
_WIRE_HEAD = '{"seq":0,'
_BLOCK_MS = 1000  # how long one XREADGROUP waits; bounds how late a claim of a dead worker's jobs can be
_CONSUMER_IDLE_MS = 3600 * 1000  # a consumer (an instance that stopped) with nothing pending, idle this long, goes
_PRUNE_EVERY = 300.0


@dataclass
class _Delivery:
    """A job this instance holds: the Redis epoch it was read in, whether another instance took it over, and the
    worker task that runs it."""

    job: Job
    epoch: str
    lost: bool = False
    runner: asyncio.Task[Any] | None = None


# The job the current worker task is running (set by `dequeue`, which the worker task itself awaits), so `append`
# can tell a run that must stop (its job was taken over, or Redis lost it) from one that may write. Tasks the run
# starts inherit the variable (a callback's timer, a webhook's sending): they outlive the run and are not fenced, so
# only the runner's own appends are (`_Delivery.runner`).
_current: contextvars.ContextVar[_Delivery | None] = contextvars.ContextVar("sluice_redis_delivery", default=None)


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The Redis URL without Sluice's own query options, and those options."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in OPTIONS}
    rest = [(k, v) for k, v in query if k not in OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), options


class RedisBroker:
    def __init__(
        self,
        url: str,
        *,
        retention_seconds: float = 3600.0,
        key_prefix: str | None = None,
        visibility_timeout: float | None = None,
        check_interval: float | None = None,
    ) -> None:
        self.url, options = split_url(url)
        self.keys = Keys(key_prefix or options.get("key_prefix") or DEFAULT_PREFIX)
        self.retention_seconds = retention_seconds
        self.visibility_timeout = float(visibility_timeout or options.get("visibility_timeout") or 30.0)
        self.check_interval = float(check_interval or options.get("check_interval") or 2.0)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        # Bounded: a burst of subscribers replaying their logs waits for a connection instead of opening hundreds.
        pool = aioredis.BlockingConnectionPool.from_url(self.url, decode_responses=True, max_connections=64, timeout=20)
        self.redis: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self.feed = Feed(self.redis, self.keys)
        self._scripts = {
            name: self.redis.register_script(getattr(scripts, name))
            for name in (
                "OPEN_LOG",
                "APPEND",
                "SEAL",
                "ENQUEUE",
                "ACK",
                "REFRESH",
                "HIT_RATE",
                "ACQUIRE_SLOT",
                "RESERVE",
                "SETTLE",
                "SEED",
            )
        }
        self._epoch = ""
        self._ready: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._demand = 0
        self._wanted = asyncio.Event()
        self._held: dict[str, _Delivery] = {}  # entry id → delivery, from read until ack
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # lifecycle ----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.redis.set(self.keys.epoch, secrets.token_hex(8), nx=True)
        self._epoch = str(await self.redis.get(self.keys.epoch) or "")
        await self._ensure_group()
        await self.feed.start()
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name="sluice-redis-fetch"),
            asyncio.create_task(self._keep_loop(), name="sluice-redis-keep"),
        ]

    async def aclose(self) -> None:
        if self._closed:
            return
        # The loops also watch this flag: redis-py can turn the cancellation of a pending command into a
        # connection error, which the loops would otherwise take for a network blip and retry.
        self._closed = True
        self._wanted.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.feed.aclose()
        await self.redis.aclose()

    async def wait_for_data_loss(self) -> None:
        """Return when Redis has lost this deployment's data and the other instances have had time to notice it
        (so none of them still writes for a run of before the loss). The caller then re-queues from the store."""
        await self._lost.wait()
        self._lost.clear()
        await asyncio.sleep(2 * self.check_interval)

    # jobs ---------------------------------------------------------------------------------------------------------

    async def enqueue(self, request_id: str) -> None:
        # A request already held by the stream (queued, or running on a live or dead instance) is not added again:
        # restarts and recoveries re-enqueue freely without running a request twice at once.
        await self._scripts["ENQUEUE"](keys=[self.keys.jobs, self.keys.job(request_id)], args=[request_id])

    async def dequeue(self) -> Job:
        previous = _current.get()
        if previous is not None and previous.job.receipt in self._held:
            # The worker took another job without acknowledging this one (its run crashed). Stop keeping it fresh,
            # so it goes idle and is claimed and run again after the visibility timeout.
            del self._held[previous.job.receipt]
        self._demand += 1
        if self._ready.empty():
            self._wanted.set()
        try:
            delivery = await self._ready.get()
            while delivery.epoch != self._epoch:  # read before Redis lost its data: the entry is gone
                self._wanted.set()
                delivery = await self._ready.get()
        finally:
            self._demand -= 1
        delivery.runner = asyncio.current_task()
        _current.set(delivery)
        return delivery.job

    async def ack(self, job: Job) -> None:
        self._held.pop(job.receipt, None)
        current = _current.get()
        if current is not None and current.job is job:
            _current.set(None)
        await self._scripts["ACK"](keys=[self.keys.jobs, self.keys.job(job.request_id)], args=[GROUP, job.receipt])

    async def _ensure_group(self) -> None:
        try:
            # Id 0: entries enqueued before the group existed (another instance started first) are delivered too.
            await self.redis.xgroup_create(self.keys.jobs, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _fetch_loop(self) -> None:
        last_claim = 0.0
        while not self._closed:
            want = self._demand - self._ready.qsize()
            if want <= 0:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            try:
                entries: list[tuple[str, dict[str, str]]] = []
                if time.monotonic() - last_claim > min(self.visibility_timeout / 2, 5.0):
                    last_claim = time.monotonic()
                    entries = await self._claim_stale(want)
                if not entries:
                    entries = await self._read_new(want)
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):  # the job stream is gone: Redis lost our data
                    await self._check_epoch()
                    await self._ensure_group()
                    continue
                log.exception("reading jobs from redis failed; retrying")
                await asyncio.sleep(1.0)
                continue
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis unreachable while reading jobs (%s); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            except Exception:  # never let the one job reader die: the instance would silently stop taking jobs
                log.exception("reading jobs from redis failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for entry_id, fields in entries:
                delivery = _Delivery(Job(request_id=fields["r"], receipt=entry_id), self._epoch)
                self._held[entry_id] = delivery
                self._ready.put_nowait(delivery)

    async def _read_new(self, count: int) -> list[tuple[str, dict[str, str]]]:
        reply = cast(
            "list[Any]",
            await self.redis.xreadgroup(GROUP, self.consumer, {self.keys.jobs: ">"}, count=count, block=_BLOCK_MS),
        )
        return [entry for _stream, stream_entries in reply or [] for entry in stream_entries if entry[1]]

    async def _claim_stale(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Jobs another consumer read and stopped keeping fresh (it died): take them over."""
        reply = await self.redis.execute_command(
            "XAUTOCLAIM",
            self.keys.jobs,
            GROUP,
            self.consumer,
            int(self.visibility_timeout * 1000),
            "0-0",
            "COUNT",
            count,
        )
        claimed = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        if claimed:
            log.warning("took over %d job(s) of a worker that stopped", len(claimed))
        return claimed

    async def _keep_loop(self) -> None:
        interval = min(self.check_interval, self.visibility_timeout / 3)
        last_prune = time.monotonic()
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self._check_epoch()
                await self._refresh_held()
                if time.monotonic() - last_prune > _PRUNE_EVERY:
                    last_prune = time.monotonic()
                    await self._prune_consumers()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis unreachable (%s)", exc)
            except Exception:
                log.exception("keeping jobs fresh in redis failed")

    async def _refresh_held(self) -> None:
        if not self._held:
            return
        ids = list(self._held)
        lost = await self._scripts["REFRESH"](keys=[self.keys.jobs], args=[GROUP, self.consumer, *ids])
        for entry_id in lost:
            delivery = self._held.pop(entry_id, None)
            if delivery is not None:
                # Another instance claimed it (this one was too slow to keep it fresh): stop writing for it.
                delivery.lost = True
                log.warning("job %s was taken over by another instance; its run here stops", delivery.job.request_id)

    async def _prune_consumers(self, idle_ms: int = _CONSUMER_IDLE_MS) -> None:
        """Every restart adds a consumer to the group; forget the ones of stopped instances once they hold nothing."""
        for consumer in await self.redis.xinfo_consumers(self.keys.jobs, GROUP):
            if consumer["name"] != self.consumer and consumer["pending"] == 0 and consumer["idle"] >= idle_ms:
                await self.redis.xgroup_delconsumer(self.keys.jobs, GROUP, consumer["name"])

    async def _check_epoch(self) -> None:
        epoch = cast("str | None", await self.redis.get(self.keys.epoch))
        if epoch == self._epoch:
            return
        if epoch is None:
            await self.redis.set(self.keys.epoch, secrets.token_hex(8), nx=True)
            epoch = str(await self.redis.get(self.keys.epoch) or "")
        log.warning("redis lost the broker's data (epoch changed); unfinished requests are re-queued from the store")
        self._epoch = epoch
        for delivery in self._held.values():
            delivery.lost = True  # the entries went with the data; the runs stop at their next append
        self._held.clear()
        await self._ensure_group()
        self.feed.wake_all()
        self._lost.set()

    # channel logs -------------------------------------------------------------------------------------------------

    async def open_log(self, channel_id: str, next_seq: int = 1) -> bool:
        created = await self._scripts["OPEN_LOG"](
            keys=[self.keys.log(channel_id), self.keys.meta(channel_id)], args=[next_seq, _OPEN_LOG_TTL]
        )
        return bool(created)

    async def append(self, channel_id: str, event: Event) -> WireEvent | None:
        """As `Broker.append`; raises `LogLost` if the log is gone or the running job is no longer this instance's."""
        delivery = _current.get()
        if (
            delivery is not None
            and delivery.job.request_id == channel_id
            and (delivery.lost or delivery.epoch != self._epoch)
            and delivery.runner is asyncio.current_task()
        ):
            raise LogLost(f"the job of channel {channel_id} is no longer held by this instance")
        wire = event.to_wire(0)
        assert wire.startswith(_WIRE_HEAD)
        seq = await self._scripts["APPEND"](
            keys=[self.keys.log(channel_id), self.keys.meta(channel_id)],
            args=[
                event.type,
                wire[len(_WIRE_HEAD) :],
                1 if event.terminal else 0,
                _OPEN_LOG_TTL,
                max(int(self.retention_seconds), 1),
                self.keys.notify(channel_id),
            ],
        )
        if seq == 0:
            return None
        if seq < 0:
            await self._check_epoch()
            raise LogLost(f"the log of channel {channel_id} is gone")
        return WireEvent(seq=seq, type=event.type, data=f'{{"seq":{seq},' + wire[len(_WIRE_HEAD) :])

    async def log_info(self, channel_id: str) -> LogInfo | None:
        next_seq, first, done = await self.redis.hmget(self.keys.meta(channel_id), ["next", "first", "done"])
        if next_seq is None or first is None:
            return None
        return LogInfo(first_seq=int(first), last_seq=int(next_seq) - 1, finished=done is not None)

    def subscribe(self, channel_id: str, after: int) -> RedisSubscription:
        return RedisSubscription(self.feed, channel_id, after)

    async def seal(self, channel_id: str) -> int | None:
        last = int(await self._scripts["SEAL"](keys=[self.keys.meta(channel_id)]))
        return None if last < 0 else last

    async def watched(self, channel_id: str) -> bool | None:
        """An instance with a subscriber of the channel is subscribed to its notify channel (`redis_feed`), so
        Redis's count of those subscriptions says whether anyone, anywhere, watches it (one Redis, not a Cluster:
        there PUBSUB NUMSUB counts one node's subscribers only)."""
        try:
            [(_, count)] = await self.redis.pubsub_numsub(self.keys.notify(channel_id))
        except (RedisConnectionError, RedisTimeoutError, OSError, ValueError):
            return None
        return int(count) > 0

    # cancels ----------------------------------------------------------------------------------------------------

    async def announce_cancel(self, request_id: str, project_id: str | None, reason: str) -> None:
        message = orjson.dumps({"r": request_id, "p": project_id, "why": reason})
        await self.redis.publish(self.keys.cancels, message)

    def on_cancel(self, handler: CancelHandler) -> None:
        self.feed.on_cancel = handler

    # shared circuit-breaker state -----------------------------------------------------------------------------

    async def breaker_state(self, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.breaker(key))
        return None if raw is None else orjson.loads(raw)

    async def set_breaker_state(self, key: str, state: dict[str, Any], ttl: float) -> None:
        await self.redis.set(self.keys.breaker(key), orjson.dumps(state), px=max(int(ttl * 1000), 1))

    # quotas shared by every instance (rate limits, concurrent streams) ----------------------------------------

    async def hit_rate(self, key: str, window: float) -> tuple[int, float]:
        hits, remaining = await self._scripts["HIT_RATE"](keys=[self.keys.rate(key)], args=[window])
        return int(hits), float(remaining)

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        taken = await self._scripts["ACQUIRE_SLOT"](keys=[self.keys.slots(key)], args=[limit, ttl, token])
        return token if taken else None

    async def release_slot(self, key: str, token: str) -> None:
        await self.redis.zrem(self.keys.slots(key), token)

    # budgets and per-minute limits (`sluice.spend`) ----------------------------------------------------------------

    async def reserve(self, hold: Hold, allowances: Sequence[Allowance]) -> Reservation | Refusal:
        keys: list[str] = []
        args: list[Any] = [len(allowances), hold.id, hold.nano, hold.tokens, hold.ttl]
        for allowance in allowances:
            budget_key = allowance.budget_key or "-"
            keys += [self.keys.budget(budget_key), self.keys.holds(budget_key)]
            keys += [self.keys.minute("rpm", allowance.scope), self.keys.minute("tpm", allowance.scope)]
            budget = allowance.budget_nano if allowance.budget_key is not None else None
            args += [_or_none(budget), _or_none(allowance.rpm), _or_none(allowance.tpm)]
        found = await self._scripts["RESERVE"](keys=keys, args=args)
        if found[0] == "ok":
            return Reservation(hold, tuple(allowances), int(found[1]))
        scope = allowances[int(found[1])].scope
        return Refusal(scope, found[0], float(found[2]), int(found[3]), int(found[4]))

    async def settle(self, reservation: Reservation, nano: int, tokens: int, *, release: bool) -> None:
        keys: list[str] = []
        args: list[Any] = [len(reservation.allowances), reservation.hold.id, nano, tokens - reservation.hold.tokens]
        args += [reservation.minute, int(release)]
        for allowance in reservation.allowances:
            budget_key = allowance.budget_key or "-"
            keys += [
                self.keys.budget(budget_key),
                self.keys.holds(budget_key),
                self.keys.minute("tpm", allowance.scope),
            ]
            args += [int(allowance.budget_key is not None), int(allowance.tpm is not None)]
        await self._scripts["SETTLE"](keys=keys, args=args)

    async def seed_budget(self, budget_key: str, spent_nano: int, ttl: float) -> None:
        await self._scripts["SEED"](keys=[self.keys.budget(budget_key)], args=[spent_nano, math.ceil(ttl)])

    async def budget_state(self, budget_key: str) -> tuple[int, int] | None:
        spent, held = await self.redis.hmget(self.keys.budget(budget_key), ["spent", "held"])
        return None if spent is None else (int(spent), int(held or 0))

    # tests and operations -----------------------------------------------------------------------------------------

    async def delete_all(self) -> int:
        """Delete every key of this deployment (what a FLUSHALL does to it). For tests and `sluice` operators."""
        deleted = 0
        async for key in self.redis.scan_iter(match=self.keys.pattern, count=1000):
            deleted += await self.redis.delete(key)
        return deleted


def _or_none(value: int | None) -> int:
    """A limit as the scripts take it: -1 for none."""
    return -1 if value is None else value
