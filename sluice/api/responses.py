"""`/v1/responses`: the OpenAI Responses API face of the same engine, so Responses apps run through Sluice.

`POST /v1/responses` runs as `/v1/chat/completions` does: a pass-through, answered with the `response` object or
streamed as its events, and a chain that fails before the first token is answered with that HTTP error. With
`background: true` it is Sluice's durable async job instead (`/v1/ai/async`'s): answered at once in status
`queued`, under the request id, so it survives a restart; its channel streams to a browser like any other (a
`ws_token` from `POST /v1/channels/{id}/token`) and it may carry a webhook. `GET /v1/responses/{id}` reads it, or
streams its events after number N (`?stream=true&starting_after=N`); `POST /v1/responses/{id}/cancel` ends it.

This module only wires HTTP to the gateway: the body is read by `sluice.api.responses_in`, the answer rendered by
`sluice.api.responses_out`, both from and to the canonical model every other API uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response
from starlette.types import Receive

from sluice.api.auth import ApiKey, gateway_of
from sluice.api.channels import sse_response
from sluice.api.errors import OPENAI_ERROR_RESPONSES
from sluice.api.faces import (
    Batch,
    failure_of,
    json_response,
    open_stream,
    rendered,
    stopper,
    terminal_of,
    workflow_named,
)
from sluice.api.openai_compat import assistant_message, failure_response
from sluice.api.requests import IdempotencyKey
from sluice.api.responses_in import ResponsesRequest, invalid, to_sluice
from sluice.api.responses_out import Echo, EventRenderer, epoch, final_of, response_of
from sluice.errors import BadRequest, NotFound
from sluice.events import ErrorEvent, ResponseEvent, WireEvent
from sluice.gateway import ChannelBatches, Gateway, Principal, Submission
from sluice.lifecycle.outcome import Outcome
from sluice.lifecycle.states import COMPLETED
from sluice.quotas import StreamSlot
from sluice.store import RequestRecord
from sluice.surfaces import RESPONSES

router = APIRouter(tags=["openai"])
_STREAMED: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/event-stream": {}}}}
# The channel events a Responses stream is rendered from (the others are not decoded).
_RENDERED = frozenset({"status", "delta", "tool_call", "reset", "response", "error"})


@router.post("/v1/responses", responses={**OPENAI_ERROR_RESPONSES, **_STREAMED})
async def create_response(
    request: Request, body: ResponsesRequest, principal: ApiKey, idempotency_key: IdempotencyKey = None
) -> Response:
    """Create a model response, streamed (`"stream": true`) or not, or in the background (`"background": true`);
    the official SDKs' `responses.create`, `stream` and `parse` work unchanged."""
    gateway = gateway_of(request)
    workflow_named(gateway, body.model, principal.project_id)
    history = await _history(gateway, principal, body.previous_response_id) if body.previous_response_id else None
    payload = to_sluice(body, history)
    slot = await gateway.quotas.open_stream(principal.key_id) if body.stream else None  # before accepting
    try:
        if body.background:  # the durable async job; Idempotency-Key as on /v1/ai/async
            submission = await gateway.submit(principal, payload, mode="async", idempotency_key=idempotency_key)
        else:  # a pass-through: its caller waits for the answer (sluice/passthrough.py)
            submission = await gateway.submit(principal, payload, mode="sync", durable=False, streamed=slot is not None)
    except BaseException:
        if slot is not None:
            await slot.release()
        raise
    record = submission.record
    headers = {"x-request-id": record.id, **({"Idempotent-Replayed": "true"} if submission.replayed else {})}
    if body.background and slot is not None:  # its events at once: a failure now is the stream's `response.failed`
        return _sse(gateway.follow(record.id, 0), EventRenderer(Echo.of(record)), slot, headers)
    if body.background:  # queued (or, repeated under its Idempotency-Key, as it is now)
        current = await gateway.request_for(principal, record.id) if submission.replayed else record
        return json_response(response_of(current), 200, headers)
    if slot is not None:
        return await _stream(gateway, submission, slot, headers)
    return await _answer(gateway, submission, headers, request.receive)


async def _answer(gateway: Gateway, submission: Submission, headers: dict[str, str], receive: Receive) -> Response:
    """A pass-through's `response` object, once it has ended; a failure is the HTTP error an OpenAI client
    understands, as on `/v1/chat/completions`. A client that hangs up first stops the run."""
    terminal = (await terminal_of(gateway, submission, receive)).event
    if not isinstance(terminal, ResponseEvent):
        return failure_response(*failure_of(terminal), headers)
    echo = Echo.of(submission.record)
    return json_response(final_of(echo, terminal).response(echo, epoch(terminal.ts)), 200, headers)


@router.get("/v1/responses/{response_id}", responses={**OPENAI_ERROR_RESPONSES, **_STREAMED})
async def retrieve_response(
    request: Request,
    response_id: str,
    principal: ApiKey,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=0, description="Stream the events numbered after this.")] = None,
) -> Response:
    """A response as it is now; with `stream=true`, its events from the first (or after `starting_after`), then
    live ones until it ends, numbered as when it was created."""
    gateway = gateway_of(request)
    record = await _response_record(gateway, principal, response_id)
    if not stream:
        return json_response(response_of(record), 200, {"x-request-id": record.id})
    slot = await gateway.quotas.open_stream(principal.key_id)
    if starting_after is not None and record.finished and await gateway.broker.log_info(record.id) is None:
        # Its events are no longer held (retention passed): say so, then give its end.
        return sse_response(_expired(record, starting_after), slot)
    return _sse(gateway.follow(record.id, 0), EventRenderer(Echo.of(record)), slot, {}, after=starting_after)


@router.post("/v1/responses/{response_id}/cancel", responses=OPENAI_ERROR_RESPONSES)
async def cancel_response(request: Request, response_id: str, principal: ApiKey) -> Response:
    """Cancel a background response that has not finished; one that has is returned unchanged."""
    gateway = gateway_of(request)
    record = await _response_record(gateway, principal, response_id)
    if record.mode != "async":
        raise BadRequest(
            f"response {response_id!r} was not created with background=true: only background responses can be "
            "cancelled",
            code="not_background",
        )
    return json_response(response_of(await gateway.cancel(principal, record.id)), 200, {"x-request-id": record.id})


async def _response_record(gateway: Gateway, principal: Principal, response_id: str) -> RequestRecord:
    """The stored request behind a response id (404 unless it came through this face, in this project)."""
    record = await _stored(gateway, principal, response_id)
    if record is None or record.body.get("api") != RESPONSES:
        raise NotFound(f"no response {response_id!r} in this project", code="response_not_found")
    return record


async def _history(gateway: Gateway, principal: Principal, previous_id: str) -> list[dict[str, Any]]:
    """The previous response's conversation and its answer, which come before this input (`previous_response_id`;
    its instructions do not carry over, as in OpenAI's API)."""
    record = await _stored(gateway, principal, previous_id)
    where = ("previous_response_id",)
    if record is None:
        raise invalid(where, f"no response {previous_id!r} in this project")
    if record.status != COMPLETED:
        status = response_of(record)["status"]
        raise invalid(where, f"response {previous_id!r} is {status}: only a completed one can be continued")
    messages = record.body.get("messages")
    if not messages:
        raise invalid(where, f"request {previous_id!r} is not a conversation")
    terminal = Outcome.of(record).terminal_event()
    assert isinstance(terminal, ResponseEvent)
    return [*messages, assistant_message(terminal)]


async def _stored(gateway: Gateway, principal: Principal, request_id: str) -> RequestRecord | None:
    """The request, also one that finished here and is not in the store yet: a pass-through is written a few
    milliseconds after its answer (`sluice.store.requestlog`), and a tool turn may follow that fast. An id that is
    nowhere is not waited for (with several instances, one answered by another is found once that one has written
    it: within `requestlog.FLUSH_EVERY` of its answer)."""
    for attempt in range(2):
        try:
            return await gateway.request_for(principal, request_id)
        except NotFound:
            if attempt == 0:
                await gateway.passthrough.log.flush()  # this instance's finished requests: written now
    return None


async def _stream(gateway: Gateway, submission: Submission, slot: StreamSlot, headers: dict[str, str]) -> Response:
    """A pass-through's events, once the first one its client would see has come; the HTTP error a non-streamed
    response gets if that is the run's failure (`sluice.api.faces.open_stream`). A client that hangs up before the
    end stops the run (a background response's never does)."""
    echo = Echo.of(submission.record)
    opened = await open_stream(gateway, echo.id, slot)
    if isinstance(opened, ErrorEvent):
        return failure_response(opened.code, opened.message, headers)
    channel, head = opened
    return _sse(channel, EventRenderer(echo), slot, headers, head=head, stop=stopper(gateway, submission))


def _sse(
    channel: ChannelBatches,
    renderer: EventRenderer,
    slot: StreamSlot,
    headers: dict[str, str],
    *,
    head: Iterable[list[WireEvent] | None] = (),
    after: int | None = None,
    stop: Callable[[], object] | None = None,
) -> Response:
    response = sse_response(stream_events(channel, renderer, head, after, stop), slot)
    response.headers.update(headers)
    return response


def stream_events(
    channel: ChannelBatches,
    renderer: EventRenderer,
    head: Iterable[Batch] = (),
    after: int | None = None,
    stop: Callable[[], object] | None = None,
) -> AsyncIterator[bytes]:
    """The channel's events as Responses SSE events: the batches already read (`head`), then the rest of the
    channel, rendered from the first and sent from the one numbered after `after` (`stop`: see `rendered`)."""

    def render(batch: Batch, out: list[bytes]) -> bool:
        """Appends the batch's events to `out`; True once the stream is over."""
        if batch is None:
            out.append(b": keep-alive\n\n")
            return False
        for wire in batch:
            if wire.type in _RENDERED:  # by its type: the events not rendered are never decoded
                out.extend(_frames(renderer.feed(wire.event), after))
        return renderer.over

    return rendered(channel, head, _frames(renderer.start(), after), render, stop)


async def _expired(record: RequestRecord, after: int) -> AsyncIterator[bytes]:
    """A finished response whose events are no longer held: an `error` event that says so, then its end."""
    response = response_of(record)
    ends = {"completed": "response.completed", "incomplete": "response.incomplete"}
    message = (
        f"the events of response {record.id!r} are no longer held, so the stream cannot resume after {after}; "
        "the response as it ended follows"
    )
    error = {"type": "error", "code": "events_expired", "message": message, "param": None}
    end = {"type": ends.get(response["status"], "response.failed"), "response": response}
    yield b"".join(_frames([{**error, "sequence_number": after + 1}, {**end, "sequence_number": after + 2}], None))


def _frames(events: list[dict[str, Any]], after: int | None) -> list[bytes]:
    return [
        b"event: %s\ndata: %s\n\n" % (event["type"].encode(), orjson.dumps(event))
        for event in events
        if after is None or event["sequence_number"] > after
    ]
