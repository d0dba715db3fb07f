"""The runs this instance executes — worker jobs and pass-throughs — by request id, so that a cancel reaches the one
that holds the provider call: stopping a run cancels its task, which closes the provider's streaming response.

A cancel is announced through the broker (`CancelSignals`): in process it is a call, with Redis every instance hears
it and the one that runs the request stops it. Runs that are not here ignore it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sluice.broker.base import CancelSignals

log = logging.getLogger("sluice.runs")


class Runs:
    def __init__(self, signals: CancelSignals) -> None:
        self.signals = signals
        self._runs: dict[str, tuple[asyncio.Task[Any], str]] = {}  # request id → (its run's task, its project)
        self._stopping: dict[str, str] = {}  # request id → why it was stopped, until its run ends
        signals.on_cancel(self._heard)

    def add(self, request_id: str, task: asyncio.Task[Any], project_id: str) -> None:
        """Keep `task` as the run of `request_id` until it ends."""
        self._runs[request_id] = (task, project_id)
        task.add_done_callback(lambda _: self._forget(request_id, task))

    def stop(self, request_id: str, reason: str, project_id: str | None = None) -> asyncio.Task[Any] | None:
        """Cancel the run of `request_id` if it runs here (and, given `project_id`, belongs to that project): its
        task, cancelled, or None. `stopping` tells the run why."""
        run = self._runs.get(request_id)
        if run is None or (project_id is not None and run[1] != project_id):
            return None
        if request_id not in self._stopping:
            self._stopping[request_id] = reason
            run[0].cancel()
            log.info("stopping the run of %s (%s)", request_id, reason)
        return run[0]

    async def stop_everywhere(
        self, request_id: str, reason: str, project_id: str | None = None
    ) -> asyncio.Task[Any] | None:
        """Stop the run of `request_id` wherever it runs: here at once (its task is returned), elsewhere when the
        broker's signal arrives (announced also when it runs here: one taken over by another instance may go on)."""
        task = self.stop(request_id, reason, project_id)
        await self.signals.announce_cancel(request_id, project_id, reason)
        return task

    def ending(self, request_id: str) -> None:
        """The run has its outcome and is recording it: a stop no longer applies (it would cut the end short)."""
        if request_id not in self._stopping:
            self._runs.pop(request_id, None)

    def stopping(self, request_id: str) -> str | None:
        """Why the run of `request_id` was stopped (None: it was not; a cancelled task was then shut down)."""
        return self._stopping.get(request_id)

    def running(self, request_id: str) -> bool:
        return request_id in self._runs

    def _heard(self, request_id: str, project_id: str | None, reason: str) -> None:
        self.stop(request_id, reason, project_id)

    def _forget(self, request_id: str, task: asyncio.Task[Any]) -> None:
        run = self._runs.get(request_id)
        if run is not None and run[0] is task:
            del self._runs[request_id]
            self._stopping.pop(request_id, None)
