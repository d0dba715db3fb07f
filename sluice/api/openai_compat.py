"""`POST /v1/chat/completions`: the OpenAI Chat Completions face of the same engine.

`model` names a workflow (its chain, failover and schema apply) or `provider/model` for one configured provider.
The request runs in the same engine as any other, as a pass-through: at once in this process rather than through the
durable queue, because its caller holds the connection until the answer (`sluice.passthrough`); it is in the request
log, with every attempt, once it has finished. This module only translates the body in (the conversation fields are
validated by `sluice.api.conversation`: text and image parts, tools, tool calls and results) and the channel's
events out, as a `chat.completion` or as `chat.completion.chunk` SSE, tool calls included in OpenAI's exact shape.

`response_format`: a strict `json_schema` is held to its schema like a workflow's (native mode, validation, repair,
re-ask), and wins over the workflow's; `json_object` and a non-strict schema are asked of the provider natively.
Fields Sluice has no model for are forwarded to OpenAI-shaped providers (`passthrough`). `n` must be 1.

Errors are in OpenAI's shape (`sluice.api.errors`); a failed run is answered with the status an OpenAI client
understands (`_FAILURE_STATUS`). One limit of the format: an OpenAI client cannot take back text. Failover before the
first token is invisible to it, and a streamed completion whose chain fails before its first token is answered with
that same HTTP error, not a stream (so clients retry as they would a non-streamed one); but if a provider fails after
text was streamed, the stream ends with an `error` object (which the `openai` package raises as `APIError`); the
WebSocket/SSE channel of the same request carries the `reset` and the failover.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from sluice.api.auth import ApiKey, gateway_of
from sluice.api.channels import sse_response
from sluice.api.conversation import Conversation, ResponseFormatSpec
from sluice.api.errors import OPENAI_ERROR_RESPONSES, openai_error, openai_error_response
from sluice.errors import BadRequest, NotFound
from sluice.events import DeltaEvent, ErrorEvent, Event, ResetEvent, ResponseEvent, ToolCallEvent, WireEvent
from sluice.gateway import ChannelBatches, Gateway, Principal
from sluice.passthrough import Finished
from sluice.quotas import StreamSlot
from sluice.surfaces import CHAT_COMPLETIONS

router = APIRouter(tags=["openai"])
# Run failures as HTTP statuses an OpenAI client understands; anything else is the upstream's fault (502).
_FAILURE_STATUS = {"invalid_request": 400, "rate_limited": 429, "provider_timeout": 504}
# The events a chunk stream shows its client (status, attempt, failover… are the channel's alone).
_SHOWN = frozenset({DeltaEvent.type, ToolCallEvent.type, ResetEvent.type, ErrorEvent.type, ResponseEvent.type})


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(Conversation):
    """The Chat Completions request body: messages with text and image parts, tools and tool results, the JSON modes.
    Fields Sluice has no model for are forwarded to OpenAI-shaped providers as they are (`passthrough`)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300, description="A workflow name, or `provider/model`.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    n: int | None = None
    stop: str | list[str] | None = Field(default=None, max_length=4)
    seed: int | None = None
    response_format: ResponseFormatSpec | None = None


@router.post("/v1/chat/completions", responses={**OPENAI_ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}})
async def chat_completions(request: Request, body: ChatCompletionRequest, principal: ApiKey) -> Response:
    """OpenAI-compatible chat completion, streamed (`"stream": true`) or not; the official SDKs work unchanged."""
    # `sluice.api.hotpath` serves this route in front of FastAPI; this declaration documents it (and is the same
    # handler where the hot path is not installed).
    return await complete(gateway_of(request), body, principal)


async def complete(gateway: Gateway, body: ChatCompletionRequest, principal: Principal) -> Response:
    """Run a Chat Completions request as a pass-through and answer it: a `chat.completion`, or its chunks as SSE."""
    catalog = gateway.catalog
    if catalog.workflow(body.model) is None:
        raise NotFound(
            f"model {body.model!r} is neither a workflow nor 'provider/model'; workflows: "
            f"{', '.join(sorted(catalog.workflows))}; providers: {', '.join(sorted(catalog.providers))}",
            code="model_not_found",
        )
    payload = to_sluice(body)
    slot = await gateway.quotas.open_stream(principal.key_id) if body.stream else None  # before accepting
    try:
        # A pass-through: its caller waits for the answer, so it skips the durable queue (sluice/passthrough.py).
        submission = await gateway.submit(principal, payload, mode="sync", durable=False, streamed=body.stream)
    except BaseException:
        if slot is not None:
            await slot.release()
        raise
    request_id = submission.record.id
    headers = {"x-request-id": request_id}
    if slot is not None:
        return await _stream(gateway, body, request_id, slot, headers)
    # The pass-through's own task gives its terminal event; otherwise (a durable run, or a log that had already
    # ended under the run) the channel does.
    wire = await terminal_of(submission.run) if submission.run else None
    if wire is None:
        wire = await gateway.wait_terminal(request_id)
    terminal = wire.event
    if not isinstance(terminal, ResponseEvent):
        return failure_response(*_failure(terminal), headers)
    usage = terminal.meta.get("usage") or {}
    return json_response(
        {
            "id": f"chatcmpl-{request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": assistant_message(terminal),
                    "finish_reason": terminal.meta.get("finish_reason") or "stop",
                    "logprobs": None,
                }
            ],
            "usage": _usage(usage),
        },
        200,
        headers,
    )


def json_response(content: Any, status: int, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type="application/json")


def failure_response(code: str, message: str, headers: dict[str, str]) -> Response:
    """A run that failed, as the HTTP error an OpenAI client understands (429 retried, 400 not…)."""
    return openai_error_response(_FAILURE_STATUS.get(code, 502), code, message, headers)


async def _stream(
    gateway: Gateway, body: ChatCompletionRequest, request_id: str, slot: StreamSlot, headers: dict[str, str]
) -> Response:
    """The chunk stream, once the first event its client would see has come: if that is the run's failure (the chain
    failed before any token), the HTTP error a non-streamed completion gets instead, so SDKs raise and retry as
    usual. Waiting is bounded by the heartbeat interval: past it, the stream starts (200) all the same."""
    channel = gateway.follow(request_id, 0)
    try:
        head, first = await _head(channel, gateway.settings.heartbeat_interval)
    except BaseException:
        await slot.release()
        await _close(channel)
        raise
    if isinstance(first, ErrorEvent):
        await slot.release()
        await _close(channel)
        return failure_response(first.code, first.message, headers)
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    response = sse_response(completion_chunks(channel, head, request_id, body.model, include_usage), slot)
    response.headers.update(headers)
    return response


async def _head(channel: ChannelBatches, patience: float) -> tuple[list[list[WireEvent] | None], Event | None]:
    """The channel's batches up to the first one holding an event the client sees (and that event); or those that
    came within `patience` seconds (a None batch: nothing new for a heartbeat interval), with no such event."""
    head: list[list[WireEvent] | None] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    async for batch in channel:  # left suspended, not closed: the stream reads on from here
        head.append(batch)
        if batch is None:
            break
        for wire in batch:
            if wire.type in _SHOWN:  # its type, so the events before it are not decoded
                return head, wire.event
        if loop.time() >= deadline:
            break
    return head, None


async def _close(channel: ChannelBatches) -> None:
    """Ends a channel read (and its subscription) that will not be read on."""
    close = getattr(channel, "aclose", None)
    if close is not None:
        await close()


def to_sluice(body: ChatCompletionRequest) -> dict[str, Any]:
    """The Chat Completions body as a Sluice request body (what the worker runs and the request log keeps)."""
    if body.n not in (None, 1):
        raise BadRequest("n must be 1: Sluice returns one choice per request", code="unsupported_parameter")
    payload: dict[str, Any] = {"workflow": body.model, "api": CHAT_COMPLETIONS, **body.conversation_fields()}
    max_tokens = body.max_completion_tokens or body.max_tokens
    for name, value in (
        ("temperature", body.temperature),
        ("top_p", body.top_p),
        ("max_tokens", max_tokens),
        ("stop", body.stop),
        ("seed", body.seed),
    ):
        if value is not None:
            payload[name] = value
    response_format = body.response_format
    if response_format is not None and response_format.json_schema is not None and response_format.json_schema.strict:
        # Strict: held to the schema like a workflow's (native mode, validation, repair, re-ask).
        payload["schema"] = response_format.json_schema.schema_
    elif response_format is not None and response_format.type != "text":
        payload["response_format"] = response_format.model_dump(mode="json", by_alias=True, exclude_none=True)
    if body.model_extra:
        payload["passthrough"] = dict(body.model_extra)
    return payload


async def terminal_of(run: asyncio.Task[Finished]) -> WireEvent | None:
    """The terminal event of a pass-through run in this process: no need to subscribe to its channel."""
    # A caller that goes away does not cancel the run (it is logged all the same).
    return (await asyncio.shield(run)).wire


def _failure(terminal: Event) -> tuple[str, str]:
    if isinstance(terminal, ErrorEvent):
        return terminal.code, terminal.message
    return "internal_error", f"the request ended with an unexpected {terminal.type!r} event"


def assistant_message(terminal: ResponseEvent) -> dict[str, Any]:
    """The answer as Chat Completions' assistant message: its text and, when the model called tools, the calls."""
    data = terminal.data
    if isinstance(data, dict) and data.get("tool_calls") and not terminal.meta.get("structured_output"):
        return {"role": "assistant", "content": data.get("content") or None, "tool_calls": data["tool_calls"]}
    return {"role": "assistant", "content": content_of(terminal)}


def content_of(terminal: ResponseEvent) -> str:
    """The assistant message: the text, or the structured object as JSON text when the workflow has a schema."""
    data = terminal.data
    if not terminal.meta.get("structured_output") and isinstance(data, dict) and "content" in data:
        return str(data["content"])
    return orjson.dumps(data).decode()


async def completion_chunks(
    channel: ChannelBatches,
    head: list[list[WireEvent] | None],
    request_id: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    """The channel's events as `chat.completion.chunk` SSE: the role chunk and the batches already read (`head`, sent
    in one write), then the rest of the channel."""
    base = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + orjson.dumps({**base, "choices": [choice], **extra}) + b"\n\n"

    def render(batch: list[WireEvent] | None, out: list[bytes]) -> bool:
        """Appends the batch's chunks to `out`; True once the stream is over."""
        if batch is None:
            out.append(b": keep-alive\n\n")
            return False
        for wire in batch:
            match wire.event:
                case DeltaEvent(text=text):
                    out.append(chunk({"content": text}))
                case ToolCallEvent(index=index, id=call_id, name=name, arguments=arguments):
                    call: dict[str, Any] = {"index": index}
                    if call_id is not None or name is not None:  # the call's first piece
                        call.update(id=call_id, type="function", function={"name": name, "arguments": arguments})
                    else:
                        call["function"] = {"arguments": arguments}
                    out.append(chunk({"tool_calls": [call]}))
                case ResetEvent(reason=reason):
                    out.append(_error_chunk("stream_reset", f"the provider failed after streaming: {reason}"))
                    return True
                case ErrorEvent(code=code, message=message):
                    out.append(_error_chunk(code, message))
                    return True
                case ResponseEvent(meta=meta):
                    out.append(chunk({}, meta.get("finish_reason") or "stop"))
                    if include_usage:
                        usage = _usage(meta.get("usage") or {})
                        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
                    out.append(b"data: [DONE]\n\n")
                    return True
        return False

    try:
        out = [chunk({"role": "assistant", "content": ""})]
        over = any(render(batch, out) for batch in head)  # stops at the batch that ends the stream
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
        await _close(channel)


def _error_chunk(code: str, message: str) -> bytes:
    """A failure after the stream started, in OpenAI's error shape (typed as the HTTP error it would have been)."""
    error = openai_error(_FAILURE_STATUS.get(code, 502), code, message)
    return b"data: " + orjson.dumps({"error": error}) + b"\n\n"


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Sluice's usage as OpenAI's, with the cached-input and reasoning token counts when the upstream gave them."""
    tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }
    if cached := usage.get("cached_input_tokens"):
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning := usage.get("reasoning_tokens"):
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return out
