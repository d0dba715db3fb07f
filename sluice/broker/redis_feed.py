"""Live delivery for the Redis broker: one pub/sub connection per instance feeds local subscribers.

Why not one blocking XREAD per subscriber: a blocked XREAD holds a Redis connection for as long as it waits, so an
instance with 10,000 open WebSockets would hold 10,000 connections. Here an instance holds one pub/sub connection,
subscribed to the notify channel of every channel that has at least one local subscriber. The append script
publishes each event there; the feed keeps the last few per channel, so a subscriber that is caught up takes new
events from memory, and one that is behind (it just connected, or a notification was lost in a reconnect) reads the
log with XRANGE from its cursor. The log, not the notification, is the truth: a gap in what the feed holds sends the
subscriber back to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

import orjson

from sluice.broker.base import CancelHandler
from sluice.broker.errors import LogLost
from sluice.broker.keys import Keys
from sluice.events import WireEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("sluice.broker.redis")

_READ_BATCH = 1000  # events per XRANGE; a subscriber far behind catches up in several batches
_RECENT = 256  # events kept per watched channel for subscribers that are caught up


class _Watched:
    """One channel watched by this instance: local subscribers, the event that wakes them, the latest events."""

    __slots__ = ("changed", "count", "ready", "recent", "resyncs")

    def __init__(self) -> None:
        self.count = 0
        self.resyncs = 0  # wake-ups that may mean the log is gone (a lost notification, Redis lost its data)
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()
        self.recent: deque[WireEvent] = deque(maxlen=_RECENT)  # contiguous seqs, as published

    def notify(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def add(self, event: WireEvent) -> None:
        if self.recent and event.seq != self.recent[-1].seq + 1:
            self.recent.clear()  # a gap (lost notification, reopened log): only the log can fill it
        self.recent.append(event)
        self.notify()

    def since(self, cursor: int) -> list[WireEvent] | None:
        """The held events after `cursor`, or None if the feed cannot vouch that nothing is missing before them."""
        if not self.recent or self.recent[0].seq > cursor + 1:
            return None
        return list(itertools.islice(self.recent, cursor + 1 - self.recent[0].seq, None))  # seqs are contiguous


class Feed:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._pubsub: PubSub | None = None
        self._watched: dict[str, _Watched] = {}
        self._by_name: dict[str, str] = {}
        self._to_drop: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        self.on_cancel: CancelHandler | None = None
        self._closed = False

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        # Every instance hears the cancels (`RedisBroker.announce_cancel`) here; this subscription also keeps the
        # connection readable while no channel is watched (one with no subscription cannot be read from).
        await self._pubsub.subscribe(self.keys.cancels)
        self._reader = asyncio.create_task(self._read(), name="sluice-redis-feed")

    async def aclose(self) -> None:
        self._closed = True  # see RedisBroker.aclose
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def watch(self, channel_id: str) -> _Watched:
        watched = self._watched.get(channel_id)
        if watched is None:
            watched = self._watched[channel_id] = _Watched()
            name = self.keys.notify(channel_id)
            self._by_name[name] = channel_id
            self._to_drop.discard(channel_id)
            assert self._pubsub is not None
            await self._pubsub.subscribe(name)
        watched.count += 1
        # Wait (briefly) for Redis to confirm, so an append right after this returns is sure to wake us.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watched.ready.wait(), 1.0)
        return watched

    def unwatch(self, channel_id: str) -> None:
        watched = self._watched.get(channel_id)
        if watched is None:
            return
        watched.count -= 1
        if watched.count <= 0:
            # UNSUBSCRIBE is sent by the reader task (this is called from synchronous `close()`).
            del self._watched[channel_id]
            self._to_drop.add(channel_id)

    def wake_all(self) -> None:
        for watched in self._watched.values():
            watched.recent.clear()
            watched.resyncs += 1
            watched.notify()

    async def _read(self) -> None:
        assert self._pubsub is not None
        while not self._closed:
            try:
                if self._to_drop:
                    names = [self.keys.notify(c) for c in self._to_drop if c not in self._watched]
                    self._to_drop.clear()
                    for name in names:
                        self._by_name.pop(name, None)
                    if names:
                        await self._pubsub.unsubscribe(*names)
                message = await self._pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: redis-py resubscribes on reconnect
                log.warning("redis pub/sub connection failed (%s); reconnecting", exc)
                self.wake_all()  # a notification may have been missed: let every subscriber re-read its log
                await asyncio.sleep(0.5)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message["channel"] == self.keys.cancels:
            if message["type"] == "message" and self.on_cancel is not None:
                self._cancelled(message["data"])
            return
        channel_id = self._by_name.get(message["channel"])
        watched = self._watched.get(channel_id) if channel_id is not None else None
        if watched is None:
            return
        if message["type"] == "subscribe":
            watched.ready.set()
        elif message["type"] == "message":
            kind, _, data = message["data"].partition(" ")
            seq = int(data[7 : data.index(",", 7)])  # data starts with {"seq":N,
            watched.add(WireEvent(seq=seq, type=kind, data=data))

    def _cancelled(self, data: str) -> None:
        try:
            cancel = orjson.loads(data)
            request_id, project_id, reason = cancel["r"], cancel.get("p"), cancel.get("why", "api")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed cancel message: %.200s", data)
            return
        assert self.on_cancel is not None
        try:
            self.on_cancel(request_id, project_id, reason)
        except Exception:  # the feed serves every subscriber of this instance: a cancel must never stop it
            log.exception("handling the cancel of %s failed", request_id)


class RedisSubscription:
    """A cursor into one channel's log stream, woken by the instance's feed."""

    def __init__(self, feed: Feed, channel_id: str, after: int) -> None:
        self._feed = feed
        self._channel_id = channel_id
        self._key = feed.keys.log(channel_id)
        self._cursor = after
        self._watched: _Watched | None = None
        self._resyncs = 0
        self._closed = False

    async def next_batch(self, wait: float) -> list[WireEvent]:
        if self._closed:
            return []
        if self._watched is None and wait <= 0:
            return await self._read_log()  # a read that waits for nothing needs no wake-ups (nor counts as watching)
        if self._watched is None:
            self._watched = await self._feed.watch(self._channel_id)
            self._resyncs = self._watched.resyncs
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            changed = self._watched.changed  # taken before reading, so an append during the read still wakes us
            batch = await self._read()
            if not batch and self._watched.resyncs != self._resyncs:
                # Woken to re-read: the log may be gone. Asked only then, never per idle wait.
                self._resyncs = self._watched.resyncs
                if not await self._feed.redis.exists(self._feed.keys.meta(self._channel_id)):
                    raise LogLost(f"the log of channel {self._channel_id} is gone")
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or remaining <= 0:
                return batch
            # A wake-up may be for events this cursor already read (notifications trail the log): read again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _read(self) -> list[WireEvent]:
        assert self._watched is not None
        held = self._watched.since(self._cursor)
        if held is not None:
            if held:
                self._cursor = held[-1].seq
            return held
        return await self._read_log()

    async def _read_log(self) -> list[WireEvent]:
        # decode_responses=True: ids and fields are str (redis-py's types cannot say so).
        entries = cast(
            "list[tuple[str, dict[str, str]]]",
            await self._feed.redis.xrange(self._key, min=f"({self._cursor}-0", max="+", count=_READ_BATCH),
        )
        batch = [
            WireEvent(seq=int(entry_id.split("-", 1)[0]), type=fields["t"], data=fields["d"])
            for entry_id, fields in entries
        ]
        if batch:
            self._cursor = batch[-1].seq
        return batch

    def close(self) -> None:
        if not self._closed and self._watched is not None:
            self._feed.unwatch(self._channel_id)
        self._closed = True
