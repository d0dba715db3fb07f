"""`POST /v1/chat/completions`: the OpenAI Chat Completions face of the same engine.

`model` names a workflow (its chain, failover and schema apply) or `provider/model` for one configured provider.
The request runs in the same engine as any other, as a pass-through: at once in this process rather than through the
durable queue, because its caller holds the connection until the answer (`sluice.passthrough`); it is in the request
log, with every attempt, once it has finished. This module only translates the body in and the channel's events
out, as a `chat.completion` or as `chat.completion.chunk` SSE.

One limit of the format: an OpenAI client cannot take back text. Failover before the first token is invisible to
it, but if a provider fails after text was streamed, the stream ends with an `error` object (which the `openai`
package raises as `APIError`); the WebSocket/SSE channel of the same request carries the `reset` and the failover.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from sluice.api.auth import ApiKey, gateway_of
from sluice.api.channels import sse_response
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import BadRequest, NotFound
from sluice.events import DeltaEvent, ErrorEvent, Event, ResetEvent, ResponseEvent, WireEvent
from sluice.gateway import Gateway, Principal

router = APIRouter(tags=["openai"])
# Run failures as HTTP statuses an OpenAI client understands; anything else is the upstream's fault (502).
_FAILURE_STATUS = {"invalid_request": 400, "rate_limited": 429, "provider_timeout": 504}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class CompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """The Chat Completions request body. Fields that would change the answer's shape in ways Sluice does not do
    (tools, n > 1, non-text content) are rejected rather than ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=300, description="A workflow name, or `provider/model`.")
    messages: list[CompletionMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    n: int | None = None
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


@router.post("/v1/chat/completions", responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}})
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
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        response = sse_response(completion_chunks(gateway, request_id, body.model, include_usage), slot)
        response.headers.update(headers)
        return response
    # The pass-through's own task gives its terminal event; otherwise (a durable run, or a log that had already
    # ended under the run) the channel does.
    wire = await terminal_of(submission.run) if submission.run else None
    if wire is None:
        wire = await gateway.wait_terminal(request_id)
    terminal = wire.event
    if not isinstance(terminal, ResponseEvent):
        code, message = _failure(terminal)
        return json_response({"error": {"code": code, "message": message}}, _FAILURE_STATUS.get(code, 502), headers)
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
                    "message": {"role": "assistant", "content": content_of(terminal)},
                    "finish_reason": "stop",
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


def to_sluice(body: ChatCompletionRequest) -> dict[str, Any]:
    """The Chat Completions body as a Sluice request body (what the worker runs and the request log keeps)."""
    if body.n not in (None, 1):
        raise BadRequest("n must be 1: Sluice returns one choice per request", code="unsupported_parameter")
    if body.tools:
        raise BadRequest(
            "tools are not supported on /v1/chat/completions; use a workflow with a schema",
            code="unsupported_parameter",
        )
    if body.response_format and body.response_format.get("type") not in (None, "text"):
        raise BadRequest(
            "response_format is set by the workflow: name a workflow that has a schema as the model",
            code="unsupported_parameter",
        )
    messages = []
    for index, message in enumerate(body.messages):
        if message.role == "tool":
            raise BadRequest(f"messages[{index}]: tool messages are not supported", code="unsupported_parameter")
        messages.append(
            {"role": "system" if message.role == "developer" else message.role, "content": _text_of(message, index)}
        )
    payload: dict[str, Any] = {"workflow": body.model, "messages": messages}
    max_tokens = body.max_completion_tokens or body.max_tokens
    for name, value in (("temperature", body.temperature), ("top_p", body.top_p), ("max_tokens", max_tokens)):
        if value is not None:
            payload[name] = value
    return payload


def _text_of(message: CompletionMessage, index: int) -> str:
    if isinstance(message.content, str):
        return message.content
    if message.content is None:
        raise BadRequest(f"messages[{index}].content: expected text", code="invalid_request")
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise BadRequest(
                f"messages[{index}]: only text content parts are supported, not {part.type!r}",
                code="unsupported_parameter",
            )
        texts.append(part.text)
    return "".join(texts)


async def terminal_of(run: asyncio.Task[WireEvent | None]) -> WireEvent | None:
    """The terminal event of a pass-through run in this process: no need to subscribe to its channel."""
    return await asyncio.shield(run)  # a caller that goes away does not cancel the run (it is logged all the same)


def _failure(terminal: Event) -> tuple[str, str]:
    if isinstance(terminal, ErrorEvent):
        return terminal.code, terminal.message
    return "internal_error", f"the request ended with an unexpected {terminal.type!r} event"


def content_of(terminal: ResponseEvent) -> str:
    """The assistant message: the text, or the structured object as JSON text when the workflow has a schema."""
    data = terminal.data
    if not terminal.meta.get("structured_output") and isinstance(data, dict) and "content" in data:
        return str(data["content"])
    return orjson.dumps(data).decode()


async def completion_chunks(gateway: Gateway, request_id: str, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    base = {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return b"data: " + orjson.dumps({**base, "choices": [choice], **extra}) + b"\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for batch in gateway.follow(request_id, 0):
        if batch is None:
            yield b": keep-alive\n\n"
            continue
        out = []
        for wire in batch:
            match wire.event:
                case DeltaEvent(text=text):
                    out.append(chunk({"content": text}))
                case ResetEvent(reason=reason):
                    failed = f"the provider failed after streaming: {reason}"
                    yield b"".join(out) + _error_chunk("stream_reset", failed)
                    return
                case ErrorEvent(code=code, message=message):
                    yield b"".join(out) + _error_chunk(code, message)
                    return
                case ResponseEvent(meta=meta):
                    out.append(chunk({}, "stop"))
                    if include_usage:
                        usage = _usage(meta.get("usage") or {})
                        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n")
                    out.append(b"data: [DONE]\n\n")
        if out:
            yield b"".join(out)


def _error_chunk(code: str, message: str) -> bytes:
    return b"data: " + orjson.dumps({"error": {"code": code, "message": message, "type": "sluice_error"}}) + b"\n\n"


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}
