"""Workers inside `sluice serve`: take jobs from the broker and run them to exactly one terminal event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.broker.base import Broker, Job
from sluice.broker.errors import LogLost
from sluice.channel.partial import streamed_output
from sluice.channel.repair import announce_recorded
from sluice.channel.writer import Channel
from sluice.engine.tasks import Task
from sluice.events import ResetEvent, StatusEvent
from sluice.lifecycle.finish import finish
from sluice.lifecycle.outcome import BY_API, UNWATCHED, Outcome
from sluice.lifecycle.plan import Plan, plan_of
from sluice.lifecycle.ports import RequestEnded
from sluice.lifecycle.states import COMPLETED, QUEUED, UNFINISHED, sources
from sluice.observability.logging import bind_request_id
from sluice.runs import Runs
from sluice.spend.usage import stopped_meta
from sluice.store import RequestRecord, Store
from sluice.store.outcomes import StoredOutcome
from sluice.unwatched import until_unwatched
from sluice.workflows.model import Catalog, Workflow

if TYPE_CHECKING:
    from sluice.budgets import Budgets
    from sluice.cancellation import Cancellation
    from sluice.delivery.service import Delivery

log = logging.getLogger("sluice.worker")
# A run ends from any running state (`sources`): the store refuses the end of a request that finished meanwhile.
RUN_ENDS_FROM = sources(COMPLETED, among=UNFINISHED)


@dataclass
class _Running:
    """One run of a job: what running it, and ending it when a cancel stops it, take."""

    record: RequestRecord
    channel: Channel
    workflow: Workflow | None
    plan: Plan
    attempts: list[dict[str, Any]] = field(default_factory=list)  # its attempts as they end, with what each spent


class Worker:
    def __init__(
        self,
        broker: Broker,
        store: Store,
        tasks: Mapping[str, Task],
        catalog: Callable[[], Catalog],
        *,
        concurrency: int = 64,
        delivery: Delivery | None = None,
        budgets: Budgets | None = None,
        max_crashes: int = 3,
        runs: Runs | None = None,
        cancellation: Cancellation | None = None,
    ) -> None:
        self.broker = broker
        self.store = store
        self.tasks = tasks
        self.catalog = catalog
        self.concurrency = concurrency
        self.delivery = delivery
        self.budgets = budgets
        self.max_crashes = max_crashes
        self.runs = runs or Runs(broker)  # each run, so a cancel can stop it
        self.cancellation = cancellation  # what ends a request nobody watches (`cancel_when_unwatched_for`)
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
                await self.broker.append(record.id, StatusEvent(status=QUEUED))
                self._reopened.add(record.id)
            await self.broker.enqueue(record.id)
        if unfinished:
            log.info("re-queued %d unfinished requests", len(unfinished))
        return len(unfinished)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(), name=f"sluice-worker-{i}") for i in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._recover_after_data_loss(), name="sluice-worker-recovery"))

    async def _recover_after_data_loss(self) -> None:
        while True:
            await self.broker.wait_for_data_loss()  # a shared broker (Redis) that lost its data while we ran
            try:
                await self.recover()
                if self.delivery is not None:  # requests awaiting their callback have no job, only a channel
                    await self.delivery.callbacks.reopen_lost_logs()
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
        if record is None:  # already finished (a duplicate delivery of the job, or one reclaimed from a dead run)
            finished = await self.store.get_request(job.request_id)
            if finished is not None:  # its end may have been recorded by a run that died before announcing it
                await announce_recorded(self.broker, self.store, finished)
            await self.broker.ack(job)
            return
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved, run=True)
        workflow = self.catalog().workflow(record.workflow, record.project_id)
        plan = plan_of(record, workflow)
        run = _Running(record, channel, workflow, plan)
        try:
            if record.run_count > 1 and record.id not in self._reopened:
                # Another run of this request started before (an instance died, or crashed, mid-run): tell clients
                # that saw its partial output to drop it.
                reason = "the previous run stopped before it finished; the request runs again"
                await channel.emit(ResetEvent(reason=reason))
            self._reopened.discard(record.id)
            result = await self._stoppable_run(run)
            if isinstance(result, str):  # stopped: a cancel ended the request (or, at worst, ends it now)
                await self._end_stopped(run, result)
                await self.broker.ack(job)
                return
            outcome = result
            if self.budgets is not None:  # what the run cost, whatever becomes of its end
                await self.budgets.run_ended(record.workflow, record.reservation, outcome)
            if (
                self.delivery is not None
                and workflow is not None
                and await self.delivery.begin_callback(channel, record, plan, workflow, outcome)
            ):
                # The callback step: the request now waits (in the store) for the backend; the terminal event is
                # emitted when the callback arrives or the workflow's timeout policy fires, not by this job.
                await self.broker.ack(job)
                return
        except RequestEnded:  # cancelled while the run wrote (a sealed log), or just before
            self._reopened.discard(record.id)
            await self._end_stopped(run, BY_API)
            await self.broker.ack(job)
            return
        webhooks = self.delivery.lifecycle_webhooks(record, plan, workflow, outcome) if self.delivery else []
        recorder = StoredOutcome(self.store, record.id, expected=RUN_ENDS_FROM, deliveries=webhooks)
        hand_off = self.delivery.hand_off(webhooks) if self.delivery else None
        release = self.budgets.releaser(record.reservation) if self.budgets else None
        await finish(outcome, recorder, channel, hand_off, release)
        await self.broker.ack(job)

    async def _stoppable_run(self, run: _Running) -> Outcome | str:
        """The run, in a task of its own that a cancel can stop (`sluice.runs`): its outcome, or why it was stopped.
        With the workflow's `cancel_when_unwatched_for`, a watchdog cancels it when nobody follows its channel."""
        record, workflow = run.record, run.workflow
        task = asyncio.ensure_future(self._run_until_stopped(run))
        self.runs.add(record.id, task, record.project_id)
        period = workflow.cancel_when_unwatched_for if workflow is not None else None
        watchdog = None
        if period is not None and self.cancellation is not None:
            watchdog = asyncio.ensure_future(self._cancel_when_unwatched(record, period))
        try:
            return await task  # a worker that stops cancels the run with it
        finally:
            if watchdog is not None:
                watchdog.cancel()

    async def _run_until_stopped(self, run: _Running) -> Outcome | str:
        try:
            return await self._run(run)
        except asyncio.CancelledError:
            reason = self.runs.stopping(run.record.id)
            task = asyncio.current_task()
            if reason is None or (task is not None and task.uncancel() > 0):  # the worker is stopping
                raise
            return reason

    async def _cancel_when_unwatched(self, record: RequestRecord, period: float) -> None:
        assert self.cancellation is not None
        await until_unwatched(lambda: self.broker.watched(record.id), period)
        log.info("request %s: nobody watched its channel for %gs; cancelling it", record.id, period)
        await self.cancellation.cancel(record, UNWATCHED)

    async def _end_stopped(self, run: _Running, why: str) -> None:
        """A stopped run's request was ended by the cancel that stopped it; should that end be missing (the instance
        that sealed the log died before recording it), it is recorded here, with what had streamed, so the request
        does not stay unfinished behind a log that refuses every run. The store refuses a second end. What the run's
        attempts spent is this instance's to add, to the request's budgets and to its record (which the cancelling
        instance wrote without it)."""
        record = run.record
        streamed = await streamed_output(self.broker, record.id)
        spend = stopped_meta(run.attempts)
        workflow = run.workflow.name if run.workflow else record.workflow
        outcome = Outcome.cancelled(why, streamed.data, workflow, spend)
        if self.budgets is not None:
            await self.budgets.run_ended(record.workflow, record.reservation, outcome)
        release = self.budgets.releaser(record.reservation) if self.budgets else None
        recorder = StoredOutcome(self.store, record.id, expected=RUN_ENDS_FROM)
        if await finish(outcome, recorder, run.channel, release=release) is None and spend:
            await self.store.record_spend(record.id, spend)

    async def _run(self, run: _Running) -> Outcome:
        record, workflow, plan = run.record, run.workflow, run.plan
        crashes = record.run_count - 1  # runs that started before this one and never finished
        if crashes >= self.max_crashes:
            # A poison job: whatever it does takes its run down (an out-of-memory kill, a crash, a hang past the
            # lease). Dead-lettered rather than retried forever — and, on one instance, crash-looping the gateway.
            log.error("request %s stopped %d times without finishing; failed as job_crashed", record.id, crashes)
            return Outcome.failed(
                "job_crashed",
                f"the request's run stopped {crashes} times without finishing (the gateway crashed, was killed or "
                "lost the job mid-run); it is not run again",
            )
        if workflow is None:
            return Outcome.failed("workflow_not_found", f"workflow {record.workflow!r} no longer exists")
        task = self.tasks.get(plan.kind)
        if task is None:
            return Outcome.failed("unsupported_request", f"this gateway cannot run {plan.kind!r} requests")
        try:
            return await task(run.channel, record.id, workflow, record.body, streamed=True, attempts=run.attempts)
        except (asyncio.CancelledError, LogLost, RequestEnded):
            raise
        except Exception as exc:
            log.exception("request %s failed inside the gateway", record.id)
            return Outcome.internal_error(exc)
