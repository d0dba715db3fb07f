"""Workers inside `sluice serve`: take jobs from the broker and run them to exactly one terminal event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sluice.broker.base import Broker, Job
from sluice.engine.channel import Channel
from sluice.engine.run import Outcome, Runner, error_event
from sluice.events import ResetEvent, ResponseEvent, StatusEvent
from sluice.store import Store
from sluice.workflows.model import Catalog

log = logging.getLogger("sluice.worker")


class Worker:
    def __init__(
        self, broker: Broker, store: Store, runner: Runner, catalog: Callable[[], Catalog], *, concurrency: int = 64
    ) -> None:
        self.broker = broker
        self.store = store
        self.runner = runner
        self.catalog = catalog
        self.concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []

    async def recover(self) -> int:
        """Re-queue every accepted request that has not finished (the gateway stopped or was killed while it ran).

        Where the broker lost the channel's log, it is reopened past the old run's reserved numbers and starts with a
        `reset`, so a client that saw part of the old run discards it and sequence numbers only move forward.
        """
        unfinished = await self.store.list_unfinished()
        for record in unfinished:
            if await self.broker.log_info(record.id) is None:
                await self.broker.open_log(record.id, next_seq=record.seq_reserved + 1)
                await self.broker.append(record.id, ResetEvent(reason="the gateway restarted; the request runs again"))
                await self.broker.append(record.id, StatusEvent(status="queued"))
            await self.broker.enqueue(record.id)
        if unfinished:
            log.info("re-queued %d unfinished requests", len(unfinished))
        return len(unfinished)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(), name=f"sluice-worker-{i}") for i in range(self.concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self) -> None:
        while True:
            job = await self.broker.dequeue()
            try:
                await self.process(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The request stays unfinished in the store and is taken up again at the next start.
                log.exception("job %s crashed", job.request_id)

    async def process(self, job: Job) -> None:
        record = await self.store.start_run(job.request_id)
        if record is None:  # already finished: a duplicate delivery of the job
            await self.broker.ack(job)
            return
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        workflow = self.catalog().workflows.get(record.workflow)
        if workflow is None:
            outcome = Outcome(status="failed", error={
                "code": "workflow_not_found", "message": f"workflow {record.workflow!r} no longer exists"})
        else:
            try:
                outcome = await self.runner.run(channel, record.id, workflow, record.body)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("request %s failed inside the gateway", record.id)
                outcome = Outcome(status="failed", error={"code": "internal_error",
                                                          "message": f"the gateway failed: {type(exc).__name__}"})
        terminal = ResponseEvent(data=outcome.data, meta=outcome.meta) if outcome.status == "completed" else (
            error_event(outcome))
        wire = await channel.emit(terminal)
        await self.store.finish_request(
            record.id, status=outcome.status, terminal_seq=wire.seq if wire else None, data=outcome.data,
            error=outcome.error, meta=outcome.meta, first_token_at=outcome.first_token_at,
        )
        await self.broker.ack(job)
