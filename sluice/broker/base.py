"""The broker contract: a job queue, per-channel event logs and subscriptions that replay then follow, small shared
records (breakers, quotas), and the cancel signal every instance hears. Each part is its own protocol, so code that
needs one asks for that one.

Sequence numbers are assigned by the broker when an event is appended, so several writers (the worker running a job,
the API instance receiving a callback) can share one channel. A log accepts exactly one terminal event: appending a
second returns None, which is how "exactly one terminal event per channel" is enforced in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sluice.events import Event, WireEvent
from sluice.spend.limits import Allowance, Hold, Refusal, Reservation


@dataclass(frozen=True)
class Job:
    request_id: str
    receipt: str = ""


@dataclass(frozen=True)
class LogInfo:
    first_seq: int
    last_seq: int
    finished: bool


class Subscription(Protocol):
    async def next_batch(self, wait: float) -> list[WireEvent]:
        """The events after the cursor, waiting up to `wait` seconds for one; [] when none came in time.
        Raises `LogLost` when the log vanished meanwhile (a shared broker lost its data)."""
        ...

    def close(self) -> None: ...


class JobQueue(Protocol):
    async def enqueue(self, request_id: str) -> None:
        """Queue a job. Returns once the job is held by the broker."""
        ...

    async def dequeue(self) -> Job:
        """Wait for the next job."""
        ...

    async def ack(self, job: Job) -> None:
        """The job is finished (terminal state recorded in the store); it will not be delivered again."""
        ...


class ChannelLogs(Protocol):
    async def open_log(self, channel_id: str, next_seq: int = 1) -> bool:
        """Create the channel's log if it does not exist, numbering from at least `next_seq`. True if this call created
        it (of several instances reopening a lost log at once, exactly one)."""
        ...

    async def append(self, channel_id: str, event: Event) -> WireEvent | None:
        """Number and store the event, wake subscribers. None if the log already holds a terminal event."""
        ...

    async def log_info(self, channel_id: str) -> LogInfo | None:
        """What the log holds, or None if it is gone (retention passed, broker data lost) or never existed."""
        ...

    def subscribe(self, channel_id: str, after: int) -> Subscription:
        """Every event with seq > after, then live ones. The caller checks `log_info` first."""
        ...

    async def seal(self, channel_id: str) -> int | None:
        """Refuse every further event but a terminal one (a cancel about to end the request: what the log holds
        now is what was streamed). The last seq it holds, or None if there is no log."""
        ...

    async def watched(self, channel_id: str) -> bool | None:
        """Whether a subscriber follows the channel, on any instance; None when the broker cannot tell."""
        ...


# A cancel as every instance hears it: (request id, the project whose key asked or None for the operator, reason).
CancelHandler = Callable[[str, str | None, str], None]


class CancelSignals(Protocol):
    """How a cancel reaches the instance that runs the request (its provider call), wherever that is."""

    async def announce_cancel(self, request_id: str, project_id: str | None, reason: str) -> None:
        """Tell every instance, this one included, to stop its run of `request_id`."""
        ...

    def on_cancel(self, handler: CancelHandler) -> None:
        """Call `handler` for every cancel announced, by any instance (one handler per broker)."""
        ...


class SharedState(Protocol):
    """Small records every instance shares: circuit breakers and quota counters."""

    async def breaker_state(self, key: str) -> dict[str, Any] | None:
        """The circuit breaker record of `key` (a provider/model), shared by every instance; None if none is held."""
        ...

    async def set_breaker_state(self, key: str, state: dict[str, Any], ttl: float) -> None:
        """Store a breaker record (small, JSON-able) for at least `ttl` seconds."""
        ...

    async def hit_rate(self, key: str, window: float) -> tuple[int, float]:
        """Count one hit on `key` (e.g. an API key's rate limit) in the current fixed window of `window` seconds,
        shared by every instance: (hits in this window so far, seconds until the window ends)."""
        ...

    async def acquire_slot(self, key: str, limit: int, ttl: float) -> str | None:
        """Take one of `limit` slots of `key` (e.g. an API key's open streams): a token for `release_slot`, or None
        when all are taken. A slot never released (its instance died) is freed after `ttl` seconds."""
        ...

    async def release_slot(self, key: str, token: str) -> None: ...

    async def reserve(self, hold: Hold, allowances: Sequence[Allowance]) -> Reservation | Refusal:
        """Check `hold` against every allowance (budgets, rpm, tpm) and, if it fits them all, take it from each in
        the same step; else the first limit it does not fit (`unseeded`: that budget's state must first be
        `seed_budget`ed from the store). Raises if the state cannot be read: the caller refuses the request."""
        ...

    async def settle(self, reservation: Reservation, nano: int, tokens: int, *, release: bool) -> None:
        """Add what a request's run really cost (`nano`) and used (`tokens`: the per-minute count is corrected by
        their difference from the hold's), and with `release` give back its hold."""
        ...

    async def seed_budget(self, budget_key: str, spent_nano: int, ttl: float) -> None:
        """Set a budget's spend (from the store) unless another instance already did; kept `ttl` seconds (0:
        for good)."""
        ...

    async def budget_state(self, budget_key: str) -> tuple[int, int] | None:
        """(spent, held) of a budget in nano-USD, None if it is not held by the broker (not seeded yet)."""
        ...


class Broker(JobQueue, ChannelLogs, SharedState, CancelSignals, Protocol):
    """All four in one, as each implementation (`memory`, `redis`) provides them."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def wait_for_data_loss(self) -> None:
        """Return when the broker has lost its data while running (a shared broker whose server was flushed or
        restarted without persistence); the caller then re-queues from the store. Never returns for a broker that
        cannot lose data while its process lives (the in-process one)."""
        ...
