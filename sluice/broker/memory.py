"""The in-process broker: the embedded default for a single `sluice serve`.

Logs are lists of encoded events. A subscriber is only a cursor into its log, so a slow reader costs no memory
beyond the log itself and never holds up the writer or the other readers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sluice.broker.base import Job, LogInfo
from sluice.broker.counters import MemoryCounters
from sluice.events import Event, WireEvent


class _Log:
    __slots__ = ("changed", "events", "finished", "first_seq", "next_seq")

    def __init__(self, first_seq: int) -> None:
        self.events: list[WireEvent] = []
        self.first_seq = first_seq
        self.next_seq = first_seq
        self.finished = False
        self.changed = asyncio.Event()

    def after(self, cursor: int) -> list[WireEvent]:
        start = max(cursor - self.first_seq + 1, 0)
        return self.events[start:] if start < len(self.events) else []

    def notify(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class MemorySubscription:
    def __init__(self, log: _Log | None, after: int) -> None:
        self._log = log
        self._cursor = after

    async def next_batch(self, wait: float) -> list[WireEvent]:
        log = self._log
        if log is None:
            return []
        batch = log.after(self._cursor)
        if not batch and not log.finished:
            changed = log.changed
            # `asyncio.timeout`, not `wait_for`: wait_for wraps the wait in a Task of its own, one more per idle
            # subscriber (memory) and per wake-up (CPU, times every subscriber of a busy channel).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await changed.wait()
            batch = log.after(self._cursor)
        if batch:
            self._cursor = batch[-1].seq
        return batch

    def close(self) -> None:
        self._log = None


class MemoryBroker:
    def __init__(self, *, retention_seconds: float = 3600.0) -> None:
        self.retention_seconds = retention_seconds
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._logs: dict[str, _Log] = {}
        self._expiries: set[asyncio.TimerHandle] = set()
        self._breakers: dict[str, dict[str, Any]] = {}
        self._counters = MemoryCounters()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        for handle in self._expiries:
            handle.cancel()
        self._expiries.clear()

    async def enqueue(self, request_id: str) -> None:
        self._queue.put_nowait(request_id)

    async def dequeue(self) -> Job:
        return Job(request_id=await self._queue.get())

    async def ack(self, job: Job) -> None:
        return None

    async def open_log(self, channel_id: str, next_seq: int = 1) -> None:
        log = self._logs.get(channel_id)
        if log is None:
            self._logs[channel_id] = _Log(next_seq)
        elif not log.events and log.next_seq < next_seq:
            log.first_seq = log.next_seq = next_seq

    async def append(self, channel_id: str, event: Event) -> WireEvent | None:
        log = self._logs.get(channel_id)
        if log is None:
            log = self._logs[channel_id] = _Log(1)
        if log.finished:
            return None
        wire = WireEvent(seq=log.next_seq, type=event.type, data=event.to_wire(log.next_seq))
        log.next_seq += 1
        log.events.append(wire)
        if event.terminal:
            log.finished = True
            self._expire_later(channel_id, log)
        log.notify()
        return wire

    async def log_info(self, channel_id: str) -> LogInfo | None:
        log = self._logs.get(channel_id)
        if log is None:
            return None
        return LogInfo(first_seq=log.first_seq, last_seq=log.next_seq - 1, finished=log.finished)

    def subscribe(self, channel_id: str, after: int) -> MemorySubscription:
        return MemorySubscription(self._logs.get(channel_id), after)

    async def breaker_state(self, key: str) -> dict[str, Any] | None:
        return self._breakers.get(key)

    async def set_breaker_state(self, key: str, state: dict[str, Any], ttl: float) -> None:
        # One small record per provider/model in use: bounded, so no expiry is needed in process.
        self._breakers[key] = state

    async def hit_rate(self, key: str, window: float) -> tuple[int, float]:
        return await self._counters.hit_rate(key, window)

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        return await self._counters.acquire_slot(key, limit, ttl)

    async def release_slot(self, key: str, token: str) -> None:
        await self._counters.release_slot(key, token)

    def _expire_later(self, channel_id: str, log: _Log) -> None:
        def expire() -> None:
            self._expiries.discard(handle)
            if self._logs.get(channel_id) is log:
                del self._logs[channel_id]

        handle = asyncio.get_running_loop().call_later(self.retention_seconds, expire)
        self._expiries.add(handle)
