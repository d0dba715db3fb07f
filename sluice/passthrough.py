"""Pass-through runs: a synchronous request run at once in this process, without the durable store + queue.

Used by `POST /v1/chat/completions` (docs/performance.md explains the choice). Its caller holds the HTTP
connection until the answer and, like any OpenAI client, retries when the connection fails; a durable record written
before the run (a store insert, a queue entry, a status update, then the result: four transactions) protects nothing
that caller can use, and costs most of the gateway's time per request. So the request is not recorded until it has
finished; then it goes into the request log, with its attempts, through the write-behind `RequestLog`.

Everything else is the same engine and the same lifecycle: the workflow's chain, retries, failover, circuit breakers
and schema, the request's channel (its events are in the broker, so `/v1/ws` and SSE can follow it like any other),
and its end through `sluice.lifecycle.finish`. A request whose plan has something after its answer (a webhook, the
callback step) is not eligible and takes the durable path.

A run is stopped (`sluice.runs`) when its caller hangs up before the answer (the API faces notice it) or when it is
cancelled (`POST /v1/requests/{id}/cancel`, on any instance): its provider call is closed and it ends as
`cancelled`, with what it had streamed, written to the store before that end is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.broker.base import Broker
from sluice.broker.errors import LogLost
from sluice.channel.partial import streamed_output
from sluice.channel.writer import Channel
from sluice.engine.ports import Pricing
from sluice.engine.run import Runner
from sluice.engine.tasks import Task, tasks_for
from sluice.events import StatusEvent, WireEvent
from sluice.lifecycle.finish import finish
from sluice.lifecycle.outcome import BY_API, Outcome
from sluice.lifecycle.plan import Plan
from sluice.lifecycle.ports import RequestEnded
from sluice.lifecycle.states import QUEUED
from sluice.observability.logging import bind_request_id
from sluice.providers.pool import ProviderPool
from sluice.runs import Runs
from sluice.spend.usage import stopped_meta
from sluice.store import RequestRecord, Store
from sluice.store.requestlog import RequestLog
from sluice.workflows.model import Workflow

if TYPE_CHECKING:
    from sluice.budgets import Budgets

log = logging.getLogger("sluice.worker")


@dataclass(frozen=True)
class Finished:
    """A pass-through's end: its terminal event as the channel has it (None if the log had already ended), and the
    outcome, with the result kept off the log (`Outcome.result`)."""

    wire: WireEvent | None
    outcome: Outcome


class PassThrough:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        providers: ProviderPool,
        runs: Runs,
        prices: Pricing | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.broker = broker
        self.budgets = budgets
        self.log = RequestLog(store)
        self.runs = runs
        # The run's attempts go to the write-behind log, not to the store.
        self.tasks: Mapping[str, Task] = tasks_for(Runner(providers, self.log, broker, prices=prices))
        self._tasks: set[asyncio.Task[Finished]] = set()

    async def start(
        self, record: RequestRecord, workflow: Workflow, plan: Plan, *, streamed: bool = True
    ) -> asyncio.Task[Finished]:
        """Open the request's channel and start its run: the task ends with its `Finished`. A caller may follow the
        channel instead, like any subscriber.
        `streamed=False`: see `Runner.run`."""
        await self.broker.open_log(record.id)
        # The same lifecycle on the channel as a queued request (and `sluice_requests_received` counts it).
        await self.broker.append(record.id, StatusEvent(status=QUEUED))
        task = asyncio.create_task(self._run(record, workflow, plan, streamed), name=f"sluice-run-{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.runs.add(record.id, task, record.project_id)  # so a cancel, or its caller hanging up, can stop it
        return task

    async def _run(self, record: RequestRecord, workflow: Workflow, plan: Plan, streamed: bool) -> Finished:
        bind_request_id(record.id)
        # No durable row to keep ahead; a run's channel: it stops if the log refuses its events.
        channel = Channel(self.broker, None, record.id, record.seq_reserved, run=True)
        attempts: list[dict[str, Any]] = []  # the run's attempts as they end, with what each spent
        try:
            run = self.tasks[plan.kind]
            outcome = await run(channel, record.id, workflow, record.body, streamed=streamed, attempts=attempts)
        except asyncio.CancelledError:
            reason = self.runs.stopping(record.id)
            task = asyncio.current_task()
            if reason is None or (task is not None and task.uncancel() > 0):  # the gateway is shutting down
                self.log.forget(record.id)
                raise
            return await self._stopped(record, workflow, channel, reason, attempts)
        except RequestEnded:
            return await self._stopped(record, workflow, channel, self.runs.stopping(record.id) or BY_API, attempts)
        except LogLost:
            self.log.forget(record.id)
            raise
        except Exception as exc:
            log.exception("request %s failed inside the gateway", record.id)
            outcome = Outcome.internal_error(exc)
        self.runs.ending(record.id)
        release = None
        if self.budgets is not None:
            await self.budgets.run_ended(record.workflow, record.reservation, outcome)
            release = self.budgets.releaser(record.reservation)
        return Finished(await finish(outcome, self.log.outcome(record), channel, release=release), outcome)

    async def _stopped(
        self, record: RequestRecord, workflow: Workflow, channel: Channel, reason: str, attempts: list[dict[str, Any]]
    ) -> Finished:
        """End a run that was stopped (cancelled, or its caller hung up) with what it had streamed and what its
        attempts spent (added to its budgets); its row is written before the end is announced (`WrittenOutcome`)."""
        streamed = await streamed_output(self.broker, record.id)
        outcome = Outcome.cancelled(reason, streamed.data, workflow.name, stopped_meta(attempts))
        release = None
        if self.budgets is not None:
            await self.budgets.run_ended(record.workflow, record.reservation, outcome)
            release = self.budgets.releaser(record.reservation)
        return Finished(await finish(outcome, self.log.written_outcome(record), channel, release=release), outcome)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.log.aclose()
