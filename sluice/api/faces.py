"""What the API faces share (Chat Completions, Messages, Responses: each the same engine in another API's shape).

A face finds the workflow its `model` names, runs the request as a pass-through (`sluice.passthrough`) and answers
from the request's channel: whole, from its terminal event, or streamed. A stream waits for the first event its
client would see, so that a chain failing before any token is answered with an HTTP error (clients retry that as
they would a non-streamed failure) rather than with a stream that fails at once; then every batch of the channel is
rendered into the face's own frames until one ends the stream. A client that hangs up before its answer stops the
run (`terminal_of`, `rendered`): its provider call is closed and the request ends `cancelled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive

from sluice.api.hangups import hung_up
from sluice.errors import NotFound
from sluice.events import (
    DeltaEvent,
    ErrorEvent,
    Event,
    ResetEvent,
    ResponseEvent,
    ThinkingEvent,
    ToolCallEvent,
    WireEvent,
)
from sluice.gateway import ChannelBatches, Gateway, Submission
from sluice.lifecycle.outcome import CLIENT_GONE
from sluice.quotas import StreamSlot
from sluice.workflows.model import Workflow

Batch = list[WireEvent] | None  # None: nothing new for a heartbeat interval
# Appends a batch's frames to the list; True once the batch ended the stream.
Render = Callable[[Batch, list[bytes]], bool]
# The events a face's client sees (status, attempt, failover… are the channel's alone): the first of them decides
# whether a stream starts or is answered with the run's failure.
SHOWN = frozenset(
    {DeltaEvent.type, ToolCallEvent.type, ThinkingEvent.type, ResetEvent.type, ErrorEvent.type, ResponseEvent.type}
)


def workflow_named(gateway: Gateway, model: str, project_id: str) -> Workflow:
    """The workflow `model` names for a key of `project_id` (a workflow, or `provider/model`); 404 listing both
    kinds otherwise (those the project may use)."""
    workflow = gateway.catalog.workflow(model, project_id)
    if workflow is None:
        catalog = gateway.catalog.of_project(project_id)
        raise NotFound(
            f"model {model!r} is neither a workflow nor 'provider/model'; workflows: "
            f"{', '.join(sorted(catalog.workflows))}; providers: {', '.join(sorted(catalog.providers))}",
            code="model_not_found",
        )
    return workflow


def json_response(content: Any, status: int, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type="application/json")


async def terminal_of(gateway: Gateway, submission: Submission, receive: Receive | None = None) -> WireEvent:
    """The request's terminal event, for a caller that waits for the whole answer: a pass-through's from its run's
    task (no need to subscribe to its channel), else (a durable run, or a log that had already ended under the run)
    from its channel. A pass-through's caller that hangs up before the answer (`receive` says so) stops the run: it
    ends `cancelled`, and its provider call is closed."""
    run = submission.run
    wire = None
    if run is not None:
        if receive is not None and not run.done() and await hung_up(receive, run, gateway.patience):
            gateway.runs.stop(submission.record.id, CLIENT_GONE)
        # Shielded: a handler cancelled now (the server stopping) leaves the run to end, and be logged, all the same.
        wire = run.result().wire if run.done() else (await asyncio.shield(run)).wire
    return wire if wire is not None else await gateway.wait_terminal(submission.record.id)


def stopper(gateway: Gateway, submission: Submission) -> Callable[[], object] | None:
    """What stops a streamed pass-through whose client hangs up before the end (`rendered`'s `stop`); None for a
    durable request (a webhook or a callback step follows its run, whoever reads the stream)."""
    if submission.run is None:
        return None
    request_id = submission.record.id
    return lambda: gateway.runs.stop(request_id, CLIENT_GONE)


def failure_of(terminal: Event) -> tuple[str, str]:
    """(code, message) of a terminal event that is not an answer."""
    if isinstance(terminal, ErrorEvent):
        return terminal.code, terminal.message
    return "internal_error", f"the request ended with an unexpected {terminal.type!r} event"


async def open_stream(
    gateway: Gateway, request_id: str, slot: StreamSlot
) -> tuple[ChannelBatches, list[Batch]] | ErrorEvent:
    """The channel of a streamed pass-through and its batches up to the first event its client sees; or, when
    that event is the run's failure (the chain failed before any token), the failure, with the slot released and
    the channel closed. Waiting is bounded by the heartbeat interval: past it, the stream starts all the same."""
    channel = gateway.follow(request_id, 0)
    try:
        head, first = await channel_head(channel, gateway.settings.heartbeat_interval)
    except BaseException:
        await slot.release()
        await close_channel(channel)
        raise
    if isinstance(first, ErrorEvent):
        await slot.release()
        await close_channel(channel)
        return first
    return channel, head


async def channel_head(channel: ChannelBatches, patience: float) -> tuple[list[Batch], Event | None]:
    """The channel's batches up to the first one holding an event the client sees (and that event); or those that
    came within `patience` seconds (a None batch: nothing new for a heartbeat interval), with no such event."""
    head: list[Batch] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    async for batch in channel:  # left suspended, not closed: the stream reads on from here
        head.append(batch)
        if batch is None:
            break
        for wire in batch:
            if wire.type in SHOWN:  # its type, so the events before it are not decoded
                return head, wire.event
        if loop.time() >= deadline:
            break
    return head, None


async def rendered(
    channel: ChannelBatches,
    head: Iterable[Batch],
    opening: list[bytes],
    render: Render,
    stop: Callable[[], object] | None = None,
) -> AsyncIterator[bytes]:
    """The stream's bytes: `opening` and the batches already read (`head`) in one write, then the rest of the
    channel, batch by batch, until a batch ends the stream. The channel is closed however the stream ends; `stop` is
    called when it ends before its last batch (the client hung up)."""
    over = False
    try:
        out = opening
        over = any(render(batch, out) for batch in head)  # stops at the batch that ends the stream
        if out:
            yield b"".join(out)
        if over:
            return
        async for batch in channel:
            out = []
            over = render(batch, out)
            if out:
                yield b"".join(out)
            if over:
                return
    finally:
        if not over and stop is not None:
            stop()
        await close_channel(channel)


async def close_channel(channel: ChannelBatches) -> None:
    """Ends a channel read (and its subscription) that will not be read on."""
    close = getattr(channel, "aclose", None)
    if close is not None:
        await close()
