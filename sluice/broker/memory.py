"""The in-process broker: the embedded default for a single `sluice serve`.

Logs are lists of encoded events. A subscriber is only a cursor into its log, so a slow reader costs no memory
beyond the log itself and never holds up the writer or the other readers.

Waiting is what fan-out pays for per subscriber and per event, so it is kept to one future: an append resolves the
futures of the log's waiting subscribers, and the end of a wait (`next_batch`'s timeout) comes from one timer per
distinct wait shared by every waiting subscriber (a sweep every `wait / 8`), not from a timer per subscriber and
per event (with uvloop, `asyncio.timeout` costs several times the wake-up itself).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sluice.broker.base import CancelHandler, Job, LogInfo
from sluice.broker.counters import MemoryCounters
from sluice.broker.ledger import MemoryLedger
from sluice.events import Event, WireEvent
from sluice.spend.limits import Allowance, Hold, Refusal, Reservation

_SWEEPS_PER_WAIT = 8  # a wait ends between `wait` and 1.125 * `wait` after it began


class _Log:
    __slots__ = ("events", "finished", "first_seq", "next_seq", "sealed", "waiting", "watchers")

    def __init__(self, first_seq: int) -> None:
        self.events: list[WireEvent] = []
        self.first_seq = first_seq
        self.next_seq = first_seq
        self.finished = False
        self.sealed = False  # only a terminal event may follow (`seal`); a finished log is sealed too
        self.watchers = 0  # open subscriptions (`watched`)
        # The subscriptions waiting for the next append (a dict: insertion-ordered, O(1) removal).
        self.waiting: dict[MemorySubscription, None] = {}

    def after(self, cursor: int) -> list[WireEvent]:
        start = max(cursor - self.first_seq + 1, 0)
        return self.events[start:] if start < len(self.events) else []

    def notify(self) -> None:
        waiting, self.waiting = self.waiting, {}
        for subscription in waiting:
            subscription.wake()


class _Sweeper:
    """Ends the waits of every subscription that waits `wait` seconds, with one timer while any is waiting."""

    __slots__ = ("_handle", "interval", "wait", "waiting")

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.interval = wait / _SWEEPS_PER_WAIT
        self.waiting: dict[MemorySubscription, float] = {}  # subscription → when its wait is over
        self._handle: asyncio.TimerHandle | None = None

    def add(self, subscription: MemorySubscription) -> None:
        loop = asyncio.get_running_loop()
        self.waiting[subscription] = loop.time() + self.wait
        if self._handle is None:
            self._handle = loop.call_later(self.interval, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Waits are added in time order, so the ones that are due come first.
        due = []
        for subscription, deadline in self.waiting.items():
            if deadline > now:
                break
            due.append(subscription)
        for subscription in due:
            del self.waiting[subscription]
            subscription.wake()
        self._handle = loop.call_later(self.interval, self._sweep) if self.waiting else None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class MemorySubscription:
    __slots__ = ("_cursor", "_log", "_sweepers", "_waiter")

    def __init__(self, log: _Log | None, after: int, sweepers: dict[float, _Sweeper] | None = None) -> None:
        self._log = log
        if log is not None:
            log.watchers += 1
        self._cursor = after
        self._sweepers = sweepers if sweepers is not None else {}
        self._waiter: asyncio.Future[None] | None = None

    async def next_batch(self, wait: float) -> list[WireEvent]:
        log = self._log
        if log is None:
            return []
        batch = log.after(self._cursor)
        if not batch and not log.finished and wait > 0:
            await self._wait(log, wait)
            batch = log.after(self._cursor)
        if batch:
            self._cursor = batch[-1].seq
        return batch

    async def _wait(self, log: _Log, wait: float) -> None:
        sweeper = self._sweepers.get(wait)
        if sweeper is None:
            sweeper = self._sweepers[wait] = _Sweeper(wait)
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        log.waiting[self] = None
        sweeper.add(self)
        try:
            await waiter
        finally:
            # Whichever ended the wait (an append, the sweep, a cancellation), the other forgets this subscription.
            self._waiter = None
            log.waiting.pop(self, None)
            sweeper.waiting.pop(self, None)

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        if self._log is not None:
            self._log.watchers -= 1
        self._log = None


class MemoryBroker:
    def __init__(self, *, retention_seconds: float = 3600.0) -> None:
        self.retention_seconds = retention_seconds
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._logs: dict[str, _Log] = {}
        self._expiries: set[asyncio.TimerHandle] = set()
        self._sweepers: dict[float, _Sweeper] = {}  # by wait: the timers that end subscribers' waits
        self._breakers: dict[str, dict[str, Any]] = {}
        self._counters = MemoryCounters()
        self._ledger = MemoryLedger()
        self._on_cancel: CancelHandler | None = None

    async def start(self) -> None:
        return None

    async def wait_for_data_loss(self) -> None:
        await asyncio.Event().wait()  # its data lives and dies with the process

    async def aclose(self) -> None:
        for handle in self._expiries:
            handle.cancel()
        self._expiries.clear()
        for sweeper in self._sweepers.values():
            sweeper.cancel()

    async def enqueue(self, request_id: str) -> None:
        self._queue.put_nowait(request_id)

    async def dequeue(self) -> Job:
        return Job(request_id=await self._queue.get())

    async def ack(self, job: Job) -> None:
        return None

    async def open_log(self, channel_id: str, next_seq: int = 1) -> bool:
        log = self._logs.get(channel_id)
        if log is None:
            self._logs[channel_id] = _Log(next_seq)
            return True
        if not log.events and log.next_seq < next_seq:
            log.first_seq = log.next_seq = next_seq
        return False

    async def append(self, channel_id: str, event: Event) -> WireEvent | None:
        log = self._logs.get(channel_id)
        if log is None:
            log = self._logs[channel_id] = _Log(1)
        if log.sealed and (log.finished or not event.terminal):
            return None
        # The event object stays in the log: readers in this process never decode it, and its text is encoded
        # once, by the first reader that sends it (`WireEvent.data`).
        wire = WireEvent(log.next_seq, event.type, None, event)
        log.next_seq += 1
        log.events.append(wire)
        if event.terminal:
            log.finished = log.sealed = True
            self._expire_later(channel_id, log)
        log.notify()
        return wire

    async def log_info(self, channel_id: str) -> LogInfo | None:
        log = self._logs.get(channel_id)
        if log is None:
            return None
        return LogInfo(first_seq=log.first_seq, last_seq=log.next_seq - 1, finished=log.finished)

    def subscribe(self, channel_id: str, after: int) -> MemorySubscription:
        return MemorySubscription(self._logs.get(channel_id), after, self._sweepers)

    async def seal(self, channel_id: str) -> int | None:
        log = self._logs.get(channel_id)
        if log is None:
            return None
        log.sealed = True
        return log.next_seq - 1

    async def watched(self, channel_id: str) -> bool | None:
        log = self._logs.get(channel_id)
        return log is not None and log.watchers > 0

    async def announce_cancel(self, request_id: str, project_id: str | None, reason: str) -> None:
        if self._on_cancel is not None:
            self._on_cancel(request_id, project_id, reason)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._on_cancel = handler

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

    async def reserve(self, hold: Hold, allowances: Sequence[Allowance]) -> Reservation | Refusal:
        return self._ledger.reserve(hold, allowances)

    async def settle(self, reservation: Reservation, nano: int, tokens: int, *, release: bool) -> None:
        self._ledger.settle(reservation, nano, tokens, release=release)

    async def seed_budget(self, budget_key: str, spent_nano: int, ttl: float) -> None:
        self._ledger.seed(budget_key, spent_nano)  # one process: its periods are keyed, nothing to expire

    async def budget_state(self, budget_key: str) -> tuple[int, int] | None:
        return self._ledger.state(budget_key)

    def _expire_later(self, channel_id: str, log: _Log) -> None:
        def expire() -> None:
            self._expiries.discard(handle)
            if self._logs.get(channel_id) is log:
                del self._logs[channel_id]

        handle = asyncio.get_running_loop().call_later(self.retention_seconds, expire)
        self._expiries.add(handle)
