"""What runs a request of each kind: the worker and the pass-through dispatch on `Plan.kind` through this table.

A new request kind (embeddings, …) adds its task here: a coroutine from the request's body to its `Outcome`.
"""

from __future__ import annotations

from typing import Any, Protocol

from sluice.engine.chat import ChatInput
from sluice.engine.embed import EmbedInput, EmbedRunner
from sluice.engine.run import Runner
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.plan import CHAT, EMBEDDINGS
from sluice.lifecycle.ports import ChannelWriter
from sluice.workflows.model import Workflow


class Task(Protocol):
    async def __call__(
        self,
        channel: ChannelWriter,
        request_id: str,
        workflow: Workflow,
        body: dict[str, Any],
        *,
        streamed: bool,
        attempts: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        """Run the request; its attempts' meta entries go to `attempts` as they end (`Runner.run`)."""
        ...


class ChatTask:
    """A chat request through the workflow's provider chain (`Runner`)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def __call__(
        self,
        channel: ChannelWriter,
        request_id: str,
        workflow: Workflow,
        body: dict[str, Any],
        *,
        streamed: bool,
        attempts: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        chat = ChatInput.from_body(body)
        return await self.runner.run(channel, request_id, workflow, chat, streamed=streamed, attempts=attempts)


class EmbeddingsTask:
    """An embeddings request through the workflow's provider chain (`EmbedRunner`); the vectors are in the
    outcome's `result` only."""

    def __init__(self, runner: Runner) -> None:
        self.runner = EmbedRunner(runner)

    async def __call__(
        self,
        channel: ChannelWriter,
        request_id: str,
        workflow: Workflow,
        body: dict[str, Any],
        *,
        streamed: bool,
        attempts: list[dict[str, Any]] | None = None,
    ) -> Outcome:
        return await self.runner.run(channel, request_id, workflow, EmbedInput.from_body(body), attempts)


def tasks_for(runner: Runner) -> dict[str, Task]:
    """The task of every request kind, running chains with `runner`."""
    return {CHAT: ChatTask(runner), EMBEDDINGS: EmbeddingsTask(runner)}
