"""Workers inside `sluice serve`: take jobs from the broker and run them to exactly one terminal event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sluice.broker.base import Broker, Job
from sluice.broker.errors import LogLost
from sluice.channel.writer import Channel
from sluice.engine.run import Outcome, Runner, error_event
from sluice.events import ResetEvent, ResponseEvent, StatusEvent
from sluice.observability.logging import bind_request_id
from sluice.store import Store
from sluice.workflows.model import Catalog

if TYPE_CHECKING:
    from sluice.delivery.service import Delivery

log = logging.getLogger("sluice.worker")


class Worker:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        runner: Runner,
        catalog: Callable[[], Catalog],
        *,
        concurrency: int = 64,
        delivery: Delivery | None = None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.runner = runner
        self.catalog = catalog
        self.concurrency = concurrency
        self.delivery = delivery
        self._tasks: list[asyncio.Task[None]] = []
        self._reopened: set[str] = set()  # channels whose log `recover` reopened with a `reset` already

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
                self._reopened.add(record.id)
            await self.broker.enqueue(record.id)
        if unfinished:
            log.info("re-queued %d unfinished requests", len(unfinished))
        return len(unfinished)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(), name=f"sluice-worker-{i}") for i in range(self.concurrency)]
        wait_for_data_loss = getattr(self.broker, "wait_for_data_loss", None)
        if wait_for_data_loss is not None:  # a shared broker (Redis) that can lose its data while we run
            self._tasks.append(asyncio.create_task(self._recover_after_data_loss(wait_for_data_loss)))

    async def _recover_after_data_loss(self, wait_for_data_loss: Callable[[], Awaitable[None]]) -> None:
        while True:
            await wait_for_data_loss()
            try:
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("re-queueing after the broker lost its data failed; the next start will do it")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _loop(self) -> None:
        task = asyncio.current_task()
        # Not `while True`: a library call inside a run may swallow the CancelledError of `stop()`, and the loop
        # would then wait for the next job forever, hanging the shutdown.
        while task is None or not task.cancelling():
            job = await self.broker.dequeue()
            try:
                await self.process(job)
            except asyncio.CancelledError:
                raise
            except LogLost as exc:  # the broker lost this run's job or log: the job runs again elsewhere
                log.warning("run of %s stopped: %s", job.request_id, exc)
            except Exception:
                # The request stays unfinished in the store and is taken up again at the next start.
                log.exception("job %s crashed", job.request_id)

    async def process(self, job: Job) -> None:
        bind_request_id(job.request_id)  # this job's logs carry its request id
        record = await self.store.start_run(job.request_id)
        if record is None:  # already finished: a duplicate delivery of the job
            await self.broker.ack(job)
            return
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        if record.run_count > 1 and record.id not in self._reopened:
            # Another run of this request started before (an instance died, or crashed, mid-run): tell clients
            # that saw its partial output to drop it.
            await channel.emit(ResetEvent(reason="the previous run stopped before it finished; the request runs again"))
        self._reopened.discard(record.id)
        workflow = self.catalog().workflow(record.workflow)
        if workflow is None:
            outcome = Outcome(
                status="failed",
                error={"code": "workflow_not_found", "message": f"workflow {record.workflow!r} no longer exists"},
            )
        else:
            try:
                outcome = await self.runner.run(channel, record.id, workflow, record.body)
            except (asyncio.CancelledError, LogLost):
                raise
            except Exception as exc:
                log.exception("request %s failed inside the gateway", record.id)
                outcome = Outcome(
                    status="failed",
                    error={"code": "internal_error", "message": f"the gateway failed: {type(exc).__name__}"},
                )
        if (
            self.delivery is not None
            and workflow is not None
            and await self.delivery.begin_callback(
                channel, record, workflow, outcome.status, outcome.data, outcome.meta
            )
        ):
            # The callback step: the request now waits (in the store) for the backend; the terminal event is
            # emitted when the callback arrives or the workflow's timeout policy fires, not by this job.
            await self.broker.ack(job)
            return
        terminal = (
            ResponseEvent(data=outcome.data, meta=outcome.meta)
            if outcome.status == "completed"
            else (error_event(outcome))
        )
        # The outcome is recorded before it is announced. If the gateway dies in between, the request is finished
        # and its subscribers get the end from the store; the other order let a restart run it again and record a
        # different outcome than the one subscribers had already received (found by tests/chaos).
        await self.store.finish_request(
            record.id,
            status=outcome.status,
            terminal_seq=None,
            data=outcome.data,
            error=outcome.error,
            meta=outcome.meta,
            first_token_at=outcome.first_token_at,
        )
        wire = await channel.emit(terminal)
        if wire is not None:
            await self.store.set_status(record.id, outcome.status, terminal_seq=wire.seq)
        if self.delivery is not None:
            await self.delivery.send_lifecycle(
                record, workflow, outcome.status, outcome.data, outcome.meta, outcome.error
            )
        await self.broker.ack(job)
