"""Write-behind request log for runs that skip the durable queue (the `/v1/chat/completions` pass-through).

Such a request is written once, when it has finished: its row in its final state and its attempts, batched with
the other requests that finished meanwhile into one transaction. Nothing is written per request before the answer,
and nothing per token. The price: a request still running when the gateway stops is not in the log (its caller,
who holds the connection, sees it fail), and `GET /v1/requests/{id}` finds it a few milliseconds after the answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sluice.store.schema import attempts, requests
from sluice.store.store import RequestRecord, Store, attempt_values, now

if TYPE_CHECKING:
    from sluice.engine.ports import AttemptRecord
    from sluice.lifecycle.outcome import Outcome

log = logging.getLogger("sluice.store")
FLUSH_EVERY = 0.05  # seconds: how long a finished request may wait to be written with others
_REQUEST_COLUMNS = list(requests.c.keys())


class RequestLog:
    """Collects attempts in memory per request and writes finished requests in batches.

    It is a run's `AttemptLog` (`sluice.engine.ports`), and `outcome(record)` its `OutcomeRecorder`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._attempts: dict[str, list[dict[str, Any]]] = {}
        self._rows: list[dict[str, Any]] = []
        self._ready: list[dict[str, Any]] = []  # attempts of the finished requests in `_rows`
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()  # one batch at a time, so a flush also waits for the one under way
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def record_attempt(self, attempt: AttemptRecord) -> None:
        # Every column present in every row: one executemany needs the same keys in each.
        self._attempts.setdefault(attempt.request_id, []).append(attempt_values(attempt))

    def outcome(self, record: RequestRecord) -> LoggedOutcome:
        return LoggedOutcome(self, record)

    def written_outcome(self, record: RequestRecord) -> WrittenOutcome:
        return WrittenOutcome(self, record)

    def finish(self, record: RequestRecord, **final: Any) -> None:
        """Queue the finished request — `record` with the `final` column values over it — and its attempts for the
        next batch (`final` rather than a `dataclasses.replace` of the record: that costs more than the rest)."""
        row = {name: getattr(record, name) for name in _REQUEST_COLUMNS}
        row.update(final)
        self._rows.append(row)
        self._ready.extend(self._attempts.pop(record.id, ()))
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="sluice-request-log")
        self._wake.set()

    def forget(self, request_id: str) -> None:
        self._attempts.pop(request_id, None)

    async def _flush_loop(self) -> None:
        while not self._closing:
            await self._wake.wait()
            if not self._closing:
                await asyncio.sleep(FLUSH_EVERY)  # let the requests finishing meanwhile share the transaction
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing finished requests to the request log failed; they are not in the log")

    async def flush(self) -> None:
        """Write the finished requests queued so far; returns once every request finished before the call is in the
        store (a batch already being written included)."""
        async with self._writing:
            rows, ready = self._rows, self._ready
            self._rows, self._ready = [], []
            if not rows:
                return
            async with self.store.writing() as conn:
                await conn.execute(requests.insert(), rows)
                if ready:
                    await conn.execute(attempts.insert(), ready)

    async def aclose(self) -> None:
        """Write what is pending and stop. A flush under way is let finish, not cancelled: cancelling a write in the
        middle of its database call could leave the connection it holds unusable, and the last flush waiting."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush()


class LoggedOutcome:
    """The `OutcomeRecorder` of a pass-through: its row is written once, in its final state, with the number of its
    terminal event, so "recorded" only holds the outcome until the announcement gives that number."""

    __slots__ = ("_log", "_outcome", "_record", "_recorded_at")

    def __init__(self, log: RequestLog, record: RequestRecord) -> None:
        self._log = log
        self._record = record
        self._outcome: Outcome | None = None
        self._recorded_at: datetime | None = None

    async def record(self, outcome: Outcome) -> bool:
        self._outcome, self._recorded_at = outcome, now()
        return True

    async def announced(self, terminal_seq: int | None) -> None:
        outcome = self._outcome
        assert outcome is not None, "announced before recorded"
        self._log.finish(
            self._record,
            status=outcome.status,
            terminal_seq=terminal_seq,
            data=outcome.data,
            error=outcome.error,
            meta=outcome.meta,
            first_token_at=outcome.first_token_at,
            completed_at=self._recorded_at,
            cost_usd=outcome.cost_usd,
        )


class WrittenOutcome(LoggedOutcome):
    """The `OutcomeRecorder` of a pass-through that was cancelled: its row is written before its end is announced,
    like a stored request's, so whoever sees the announcement (the instance that asked for the cancel) finds it in the
    store. A cancel is rare: the write is worth that guarantee."""

    __slots__ = ()

    async def record(self, outcome: Outcome) -> bool:
        await super().record(outcome)
        await super().announced(None)  # the row, queued with the others; its terminal number follows
        await self._log.flush()
        return True

    async def announced(self, terminal_seq: int | None) -> None:
        if terminal_seq is not None:
            await self._log.store.set_terminal_seq(self._record.id, terminal_seq)
