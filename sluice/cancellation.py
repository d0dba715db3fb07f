"""Ending a request as `cancelled` — through `POST /v1/requests/{id}/cancel`, or because nobody watches it any more —
and stopping its provider call on whichever instance runs it.

A stored request is ended by the instance that receives the cancel, at once, through the lifecycle's one `finish()`:

1. seal the channel's log: from now on it takes no event but a terminal one, so what it holds is what was streamed
   (a run that tries to add more learns that its request ended, and stops);
2. record the end — status `cancelled`, the streamed output as `data`, the `task.cancelled` webhook in the same
   transaction when the request has a webhook — then announce it (`error`, code `cancelled`) and hand off;
3. close its callback wait, if it has one (a late callback is refused);
4. tell the instance that runs it to stop (`Runs.stop_everywhere`): its task is cancelled, which closes the
   provider's streaming response and logs its attempt as `cancelled`. The run's own end, should it come, is refused
   by the store (the first end wins). Where the run is on this instance, the cancel answers once it has stopped.

A pass-through is not in the store while it runs: only its own instance can end it. That instance is found the same
way (locally, or through the broker's cancel signal), stops the run and records its end itself
(`sluice.passthrough`); the caller here waits for that end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sluice.broker.base import Broker
from sluice.channel.partial import Streamed, streamed_output
from sluice.channel.reader import wait_terminal
from sluice.channel.writer import Channel
from sluice.delivery.service import Delivery
from sluice.errors import SluiceError
from sluice.lifecycle.finish import ReleaseFor, finish
from sluice.lifecycle.outcome import BY_API, Outcome
from sluice.lifecycle.plan import plan_of
from sluice.lifecycle.states import CANCELLED, sources
from sluice.runs import Runs
from sluice.store import RequestRecord, Store
from sluice.store.outcomes import StoredOutcome
from sluice.store.requestlog import FLUSH_EVERY
from sluice.workflows.model import Catalog

REMOTE_WAIT = 5.0  # seconds to wait for another instance to end a pass-through it runs
LOCAL_WAIT = 2.0  # seconds to wait for a run of this instance to stop (it takes a moment: a task's cancellation)


class Cancellation:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        runs: Runs,
        delivery: Delivery,
        catalog: Callable[[], Catalog],
        release_for: ReleaseFor | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.runs = runs
        self.delivery = delivery
        self.catalog = catalog
        self.release_for = release_for  # the request's budget hold, given back once its end is recorded

    async def cancel(self, record: RequestRecord, reason: str = BY_API) -> None:
        """End a stored, unfinished request as cancelled (the module's steps 1 to 4). A request that finished meanwhile
        keeps its end."""
        last = await self.broker.seal(record.id)
        streamed = await streamed_output(self.broker, record.id, last) if last is not None else Streamed()
        workflow = self.catalog().workflow(record.workflow, record.project_id)
        outcome = Outcome.cancelled(reason, streamed.data, record.workflow)
        webhooks = self.delivery.lifecycle_webhooks(record, plan_of(record, workflow), workflow, outcome)
        recorder = StoredOutcome(self.store, record.id, expected=sources(CANCELLED), deliveries=webhooks)
        channel = Channel(self.broker, self.store, record.id, record.seq_reserved)
        release = self.release_for(record.reservation) if self.release_for else None
        await finish(outcome, recorder, channel, self.delivery.hand_off(webhooks), release)
        await self.delivery.callbacks.cancel(record.id)
        stopped = await self.runs.stop_everywhere(record.id, reason)
        if stopped is not None:  # it ran here: its attempt is logged (`cancelled`) by the time this answers
            await asyncio.wait({stopped}, timeout=LOCAL_WAIT)

    async def cancel_passthrough(self, request_id: str, project_id: str | None) -> RequestRecord | None:
        """Cancel a running pass-through of `project_id` (None: any project) and return it as it ended; None if no
        such request runs (nor ran) on any instance."""
        task = self.runs.stop(request_id, BY_API, project_id)
        if task is not None:  # here: its task records the cancelled end (written at once), then ends
            await asyncio.wait({task}, timeout=REMOTE_WAIT)
            return await self.store.get_request(request_id)
        info = await self.broker.log_info(request_id)
        if self.runs.running(request_id) or info is None or info.finished:
            return None  # another project's, or no such request (or one just finished, not yet in the store)
        await self.broker.announce_cancel(request_id, project_id, BY_API)
        try:
            async with asyncio.timeout(REMOTE_WAIT):
                await wait_terminal(self.broker, self.store, request_id, REMOTE_WAIT)
                # Ended by a cancel, it is in the store already; ended by its answer at the same moment, it is
                # written by its instance's request log within a flush or two (another process: no event to await).
                while (record := await self.store.get_request(request_id)) is None:  # noqa: ASYNC110
                    await asyncio.sleep(FLUSH_EVERY)
                return record
        except (TimeoutError, SluiceError):  # nobody ended it: it is another project's
            return None
