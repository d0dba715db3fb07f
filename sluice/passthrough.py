"""Pass-through runs: a synchronous request run at once in this process, without the durable store + queue.

Used by `POST /v1/chat/completions` (docs/performance.md explains the choice). Its caller holds the HTTP
connection until the answer and, like any OpenAI client, retries when the connection fails; a durable record written
before the run (a store insert, a queue entry, a status update, then the result: four transactions) protects nothing
that caller can use, and costs most of the gateway's time per request. So the request is not recorded until it has
finished; then it goes into the request log, with its attempts, through the write-behind `RequestLog`.

Everything else is the same engine: the workflow's chain, retries, failover, circuit breakers and schema, and the
request's channel (its events are in the broker, so `/v1/ws` and SSE can follow it like any other). A request that
needs a webhook or the callback step is not eligible and takes the durable path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, cast

from sluice.broker.base import Broker
from sluice.channel.writer import Channel
from sluice.delivery.service import plan_for
from sluice.engine.run import Outcome, Runner, error_event
from sluice.events import ResponseEvent, StatusEvent, WireEvent
from sluice.observability.logging import bind_request_id
from sluice.providers.pool import ProviderPool
from sluice.store import RequestRecord, Store
from sluice.store.requestlog import RequestLog
from sluice.store.store import now
from sluice.workflows.model import Workflow

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("sluice.worker")


def eligible(body: dict[str, Any], workflow: Workflow) -> bool:
    """Whether a request can skip durability: nothing happens after its answer (no webhook, no callback)."""
    return plan_for(body, workflow).target is None


class PassThrough:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        providers: ProviderPool,
        runner_factory: Callable[[ProviderPool, Store], Runner] = Runner,
    ) -> None:
        self.broker = broker
        self.log = RequestLog(store)
        # The run's attempts go to the write-behind log, not to the store (RequestLog has the methods a Runner uses).
        self.runner = runner_factory(providers, cast(Store, self.log))
        self._tasks: set[asyncio.Task[WireEvent | None]] = set()

    async def start(
        self,
        record: RequestRecord,
        workflow: Workflow,
        *,
        streamed: bool = True,
    ) -> asyncio.Task[WireEvent | None]:
        """Open the request's channel and start its run: the task ends with the terminal event as the channel has it
        (None if the log had already ended). A caller may follow the channel instead, like any subscriber.
        `streamed=False`: see `Runner.run`."""
        await self.broker.open_log(record.id)
        # The same lifecycle on the channel as a queued request (and `sluice_requests_received` counts it).
        await self.broker.append(record.id, StatusEvent(status="queued"))
        task = asyncio.create_task(self._run(record, workflow, streamed), name=f"sluice-run-{record.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, record: RequestRecord, workflow: Workflow, streamed: bool) -> WireEvent | None:
        bind_request_id(record.id)
        channel = Channel(self.broker, cast(Store, self.log), record.id, record.seq_reserved)
        try:
            outcome = await self.runner.run(channel, record.id, workflow, record.body, streamed=streamed)
        except asyncio.CancelledError:
            self.log.forget(record.id)
            raise
        except Exception as exc:
            log.exception("request %s failed inside the gateway", record.id)
            outcome = Outcome(
                status="failed",
                error={"code": "internal_error", "message": f"the gateway failed: {type(exc).__name__}"},
            )
        terminal = (
            ResponseEvent(data=outcome.data, meta=outcome.meta)
            if outcome.status == "completed"
            else (error_event(outcome))
        )
        wire = await channel.emit(terminal)
        self.log.finish(
            record,
            status=outcome.status,
            terminal_seq=wire.seq if wire else None,
            data=outcome.data,
            error=outcome.error,
            meta=outcome.meta,
            first_token_at=outcome.first_token_at,
            completed_at=now(),
        )
        return wire

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.log.aclose()
