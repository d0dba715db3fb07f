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

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from starlette.types import Receive

from sluice.api.auth import ApiKey, gateway_of
from sluice.api.channels import sse_response
from sluice.api.conversation import Conversation, ResponseFormatSpec
from sluice.api.errors import OPENAI_ERROR_RESPONSES, openai_error, openai_error_response
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
from sluice.errors import BadRequest
from sluice.events import DeltaEvent, ErrorEvent, ResetEvent, ResponseEvent, ToolCallEvent
from sluice.gateway import ChannelBatches, Gateway, Principal, Submission
from sluice.lifecycle.outcome import CANCELLED_CODE
from sluice.quotas import StreamSlot
from sluice.spend.usage import answer_usage
from sluice.surfaces import CHAT_COMPLETIONS

router = APIRouter(tags=["openai"])
# Run failures as HTTP statuses an OpenAI client understands; anything else is the upstream's fault (502). A
# cancelled request is 499, as Google's APIs answer a cancelled call (no OpenAI SDK retries it).
_FAILURE_STATUS = {"invalid_request": 400, "rate_limited": 429, "provider_timeout": 504, CANCELLED_CODE: 499}


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
    return await complete(gateway_of(request), body, principal, request.receive)


async def complete(
    gateway: Gateway, body: ChatCompletionRequest, principal: Principal, receive: Receive | None = None
) -> Response:
    """Run a Chat Completions request as a pass-through and answer it: a `chat.completion`, or its chunks as SSE.
    `receive`: the request's ASGI channel, where a client that hangs up before its answer is noticed (its run is
    then stopped)."""
    workflow_named(gateway, body.model, principal.project_id)
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
        return await _stream(gateway, body, submission, slot, headers)
    terminal = (await terminal_of(gateway, submission, receive)).event
    if not isinstance(terminal, ResponseEvent):
        return failure_response(*failure_of(terminal), headers)
    usage = answer_usage(terminal.meta)
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


def failure_response(code: str, message: str, headers: dict[str, str]) -> Response:
    """A run that failed, as the HTTP error an OpenAI client understands (429 retried, 400 not…)."""
    return openai_error_response(_FAILURE_STATUS.get(code, 502), code, message, headers)


async def _stream(
    gateway: Gateway, body: ChatCompletionRequest, submission: Submission, slot: StreamSlot, headers: dict[str, str]
) -> Response:
    """The chunk stream, once the first event its client would see has come; the HTTP error a non-streamed
    completion gets if that is the run's failure (`sluice.api.faces.open_stream`)."""
    request_id = submission.record.id
    opened = await open_stream(gateway, request_id, slot)
    if isinstance(opened, ErrorEvent):
        return failure_response(opened.code, opened.message, headers)
    channel, head = opened
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    chunks = completion_chunks(channel, head, request_id, body.model, include_usage, stopper(gateway, submission))
    response = sse_response(chunks, slot)
    response.headers.update(headers)
    return response


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


def completion_chunks(
    channel: ChannelBatches,
    head: list[Batch],
    request_id: str,
    model: str,
    include_usage: bool,
    stop: Callable[[], object] | None = None,
) -> AsyncIterator[bytes]:
    """The channel's events as `chat.completion.chunk` SSE: the role chunk and the batches already read (`head`, sent
    in one write), then the rest of the channel (`stop`: see `rendered`)."""
    base = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + orjson.dumps({**base, "choices": [choice], **extra}) + b"\n\n"

    def render(batch: Batch, out: list[bytes]) -> bool:
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
                        usage = _usage(answer_usage(meta))
                        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
                    out.append(b"data: [DONE]\n\n")
                    return True
        return False

    return rendered(channel, head, [chunk({"role": "assistant", "content": ""})], render, stop)


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
