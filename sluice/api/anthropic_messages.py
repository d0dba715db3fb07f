"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: the Anthropic Messages face of the same engine, so the
official `anthropic` SDKs and Claude Code run through Sluice.

`model` names a workflow (its chain, failover and limits apply) or `provider/model`, exactly as on
`/v1/chat/completions`, and the request runs the same way: a pass-through (`sluice.passthrough`), in the request log
once it has finished, its body marked `"api": "anthropic.messages"`. The body is read into the canonical conversation
by `sluice.api.anthropic_in` (every provider type can answer it) and kept whole, with the `anthropic-beta` header, as
`native` (an Anthropic provider sends it as it came: nothing is dropped on the way); the channel's events go out as
Anthropic's answer by `sluice.api.anthropic_out`.

Keys: `x-api-key: <sluice key>` (what the `anthropic` package sends) or `Authorization: Bearer <key>`;
`anthropic-version` is accepted and not checked (there is one). Errors are in Anthropic's shape
(`sluice.api.errors`); a failed run is answered with the status an Anthropic client understands
(`anthropic_out.FAILURE_STATUS`), also when a streamed answer's chain fails before its first token; a failure after
that is an in-stream `error` event.

`count_tokens` forwards to the workflow's first chain entry when it is an Anthropic provider
(`TokenCounter.count_tokens`), and otherwise — or when that call fails — estimates (`estimate_tokens`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.responses import Response

from sluice.api.anthropic_in import CountTokensRequest, MessagesRequest, to_sluice
from sluice.api.anthropic_out import MessageStream, failure_status, message_of
from sluice.api.auth import bearer, gateway_of, principal_for
from sluice.api.channels import sse_response
from sluice.api.errors import anthropic_error_response
from sluice.api.faces import failure_of, json_response, open_stream, rendered, stopper, terminal_of, workflow_named
from sluice.errors import BadRequest, Unauthorized
from sluice.events import (
    ErrorEvent,
    ResponseEvent,
)
from sluice.gateway import Gateway, Principal, Submission
from sluice.providers.errors import ProviderError
from sluice.quotas import StreamSlot
from sluice.workflows.model import Workflow

log = logging.getLogger("sluice.api")
router = APIRouter(tags=["anthropic"])
api_key_header = APIKeyHeader(
    name="x-api-key", auto_error=False, description="A project API key (`sk_sluice_…`), as `anthropic` sends it."
)


class AnthropicErrorDetail(BaseModel):
    type: str = Field(description="`invalid_request_error`, `authentication_error`, `overloaded_error`…")
    message: str


class AnthropicErrorBody(BaseModel):
    """Anthropic's error shape, which every error of these routes takes."""

    type: Literal["error"]
    error: AnthropicErrorDetail


class TokenCount(BaseModel):
    input_tokens: int


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": AnthropicErrorBody} for status in (400, 401, 403, 404, 413, 429, 500, 504, 529)
}
COUNT_TIMEOUT = 30.0  # seconds for an Anthropic provider's count_tokens before Sluice estimates instead
CHARS_PER_TOKEN = 4
MEDIA_TOKENS = 1_600  # an image (or document) counted whole: Anthropic's figure for a ~1.15-megapixel image


async def require_key(
    request: Request,
    x_api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    key = x_api_key or (credentials.credentials if credentials else None)
    if not key:
        raise Unauthorized(
            "send your API key as 'x-api-key: <key>' or 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    return await principal_for(gateway_of(request), key)


AnthropicKey = Annotated[Principal, Depends(require_key)]


@router.post("/v1/messages", responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}})
async def create_message(request: Request, body: MessagesRequest, principal: AnthropicKey) -> Response:
    """Anthropic-compatible Messages, streamed (`"stream": true`) or not; the `anthropic` SDKs work unchanged."""
    gateway = gateway_of(request)
    workflow_named(gateway, body.model, principal.project_id)
    payload = to_sluice(body, await raw_body(request), request.headers.get("anthropic-beta"))
    slot = await gateway.quotas.open_stream(principal.key_id) if body.stream else None  # before accepting
    try:
        submission = await gateway.submit(principal, payload, mode="sync", durable=False, streamed=body.stream)
    except BaseException:
        if slot is not None:
            await slot.release()
        raise
    request_id = submission.record.id
    headers = {"x-request-id": request_id, "request-id": request_id}
    stream = MessageStream(f"msg_{request_id}", body.model)
    if slot is not None:
        return await _stream(gateway, submission, stream, slot, headers)
    terminal = (await terminal_of(gateway, submission, request.receive)).event  # hanging up stops the run
    if not isinstance(terminal, ResponseEvent):
        return failure_response(*failure_of(terminal), headers)
    return json_response(message_of(terminal, stream.message_id, body.model), 200, headers)


@router.post(
    "/v1/messages/count_tokens", response_model=None, responses={**ERROR_RESPONSES, 200: {"model": TokenCount}}
)
async def count_tokens(request: Request, body: CountTokensRequest, principal: AnthropicKey) -> Response:
    """Anthropic-compatible token counting: `{"input_tokens": n}` (the module doc says how it is counted)."""
    gateway = gateway_of(request)
    workflow = workflow_named(gateway, body.model, principal.project_id)
    tokens = await counted(gateway, workflow, await raw_body(request), request.headers.get("anthropic-beta"))
    return json_response({"input_tokens": tokens}, 200, {})


async def raw_body(request: Request) -> dict[str, Any]:
    """The body as the client sent it (FastAPI has read it, and validated it as the model): what `native` keeps."""
    try:
        raw = orjson.loads(await request.body())
    except orjson.JSONDecodeError:  # JSON that Python reads and orjson does not (NaN…)
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    if not isinstance(raw, dict):
        raise BadRequest("the body is not a JSON object", code="invalid_json")
    return raw


def failure_response(code: str, message: str, headers: dict[str, str]) -> Response:
    """A run that failed, as the HTTP error an Anthropic client understands (429 and 529 retried, 400 not…)."""
    return anthropic_error_response(failure_status(code), message, headers)


async def _stream(
    gateway: Gateway, submission: Submission, stream: MessageStream, slot: StreamSlot, headers: dict[str, str]
) -> Response:
    """The event stream, once the first event its client would see has come; the HTTP error a non-streamed message
    gets if that is the run's failure (`sluice.api.faces.open_stream`)."""
    opened = await open_stream(gateway, submission.record.id, slot)
    if isinstance(opened, ErrorEvent):
        return failure_response(opened.code, opened.message, headers)
    channel, head = opened
    events = rendered(channel, head, stream.start(), stream.render, stopper(gateway, submission))
    response = sse_response(events, slot)
    response.headers.update(headers)
    return response


async def counted(gateway: Gateway, workflow: Workflow, body: dict[str, Any], beta: str | None) -> int:
    """The input tokens of a count_tokens body: the first chain entry's own count where its provider has one
    (Anthropic), else — or when that call fails — `estimate_tokens`."""
    entry = workflow.chain[0] if workflow.chain else None
    if entry is not None:
        try:
            counter = getattr(gateway.providers.get(entry.provider), "count_tokens", None)
            if counter is not None:
                async with asyncio.timeout(COUNT_TIMEOUT):
                    return int(await counter(body, entry.model, system=workflow.system, beta=beta))
        except (ProviderError, TimeoutError) as exc:
            log.warning("count_tokens on %s failed (%s); estimating instead", entry.provider, exc)
    return estimate_tokens(body, workflow.system)


def estimate_tokens(body: dict[str, Any], system: str | None = None) -> int:
    """A rough count for providers that have none: the JSON text of `system`, `messages` and `tools` at 4
    characters a token, each image or document (its data left out) at 1,600, and the workflow's system prompt."""
    media = 0

    def without_media(value: Any) -> Any:
        nonlocal media
        if isinstance(value, dict):
            if value.get("type") in ("image", "document"):
                media += 1
                return None
            return {key: without_media(item) for key, item in value.items()}
        if isinstance(value, list):
            return [without_media(item) for item in value]
        return value

    counted = without_media({key: body[key] for key in ("system", "messages", "tools") if key in body})
    characters = len(orjson.dumps(counted)) + len(system or "")
    return math.ceil(characters / CHARS_PER_TOKEN) + media * MEDIA_TOKENS
