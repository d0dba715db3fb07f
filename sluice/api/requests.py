"""Submitting requests, reading and cancelling them: `/v1/ai/async`, `/v1/ai`, `/v1/requests/{id}[/cancel]`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import JSONResponse, Response

from sluice.api.auth import ApiKey, bearer, gateway_of, principal_from
from sluice.api.channels import sse_response, sse_stream
from sluice.api.formats import formatted_result
from sluice.api.schemas import ERROR_RESPONSES, AIRequest, AsyncAccepted, ChannelToken, RequestStatus, SyncResult
from sluice.errors import Unauthorized
from sluice.events import ErrorEvent, ResponseEvent
from sluice.store import RequestRecord
from sluice.surfaces import INTERNAL_FIELDS

router = APIRouter(tags=["requests"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=255, description="A repeat returns the first response.")
]


@router.post("/v1/ai/async", status_code=202, response_model=AsyncAccepted, responses=ERROR_RESPONSES)
async def submit_async(
    request: Request, body: AIRequest, principal: ApiKey, idempotency_key: IdempotencyKey = None
) -> Response:
    """Accept a request and run it in the background. The browser follows it with `websocket_url` + `ws_token`."""
    gateway = gateway_of(request)
    submission = await gateway.submit(principal, _payload(body), mode="async", idempotency_key=idempotency_key)
    headers = {"Idempotent-Replayed": "true"} if submission.replayed else None
    return JSONResponse(gateway.accepted_body(submission.record, principal.key_id), status_code=202, headers=headers)


@router.post(
    "/v1/ai",
    response_model=SyncResult,
    responses={
        **ERROR_RESPONSES,
        502: {"model": SyncResult, "description": "Every provider failed"},
        200: {"content": {"text/event-stream": {}}},
    },
)
async def submit_sync(
    request: Request, body: AIRequest, principal: ApiKey, idempotency_key: IdempotencyKey = None
) -> Response:
    """Run a request and answer with its result; with `"stream": true`, answer with the channel's events as SSE."""
    gateway = gateway_of(request)
    # The stream slot is taken before the request is accepted, so a refused stream leaves no request behind.
    slot = await gateway.quotas.open_stream(principal.key_id) if body.stream else None
    try:
        submission = await gateway.submit(principal, _payload(body), mode="sync", idempotency_key=idempotency_key)
    except BaseException:
        if slot is not None:
            await slot.release()
        raise
    record = submission.record
    if slot is not None:
        return sse_response(sse_stream(gateway, record.id, 0), slot)
    terminal = (await gateway.wait_terminal(record.id)).event
    if body.format is not None:  # ModelRiver's response shapes (DESIGN.md §9)
        return await formatted_result(gateway, record, terminal, body.format)
    result: dict[str, Any] = {"channel_id": record.id, "request_id": record.id}
    match terminal:
        case ResponseEvent(data=data, meta=meta):
            result.update(status="completed", data=data, meta=meta)
            return JSONResponse(result)
        case ErrorEvent(code=code, message=message):
            result.update(status="failed", error={"code": code, "message": message})
        case _:
            result.update(status="failed", error={"code": "internal_error", "message": "the run ended unexpectedly"})
    return JSONResponse(result, status_code=502)


@router.get("/v1/requests/{request_id}", response_model=RequestStatus, responses=ERROR_RESPONSES)
async def get_request(request: Request, request_id: str, principal: ApiKey) -> Response:
    """A request's status, final data, attempts and timings (`request_id` or `channel_id`)."""
    gateway = gateway_of(request)
    record = await gateway.request_for(principal, request_id)
    attempts = await gateway.store.list_attempts(record.id)
    return JSONResponse(render_request(record, attempts))


@router.post("/v1/requests/{request_id}/cancel", response_model=RequestStatus, responses=ERROR_RESPONSES)
async def cancel_request(
    request: Request,
    request_id: str,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[str | None, Query(description="The request's cancel_token (the `cancel_url` has it).")] = None,
) -> Response:
    """Cancel a request wherever it runs: its end (`cancelled`, with the output streamed so far as `data`) is
    recorded and its channel's terminal `error` event (code `cancelled`) sent before this answers, and its provider
    call is closed. A request that has finished is returned as it is. Authorised by an API key of the request's
    project (the master key: any), or by the request's `cancel_token`, which a browser may hold."""
    gateway = gateway_of(request)
    if token is not None:  # the capability of this one request, safe to give a browser: no key, no rate limit
        if not gateway.signer.is_cancel_token(request_id, token):
            raise Unauthorized("this cancel token is not the one of this request", code="invalid_cancel_token")
        record = await gateway.cancel(None, request_id)
        headers = {"Access-Control-Allow-Origin": "*"}  # a page on another origin may read the answer
    else:
        record = await gateway.cancel(await principal_from(request, credentials), request_id)
        headers = {}
    attempts = await gateway.store.list_attempts(record.id)
    return JSONResponse(render_request(record, attempts), headers=headers)


@router.post("/v1/channels/{channel_id}/token", response_model=ChannelToken, responses=ERROR_RESPONSES)
async def refresh_channel_token(request: Request, channel_id: str, principal: ApiKey) -> Response:
    """A fresh `ws_token` (and `websocket_url`) for an existing channel, e.g. when a page reloads after the first
    token expired. Your backend calls this with its API key and hands the result to the browser."""
    gateway = gateway_of(request)
    record = await gateway.request_for(principal, channel_id)
    accepted = gateway.accepted_body(record, principal.key_id)
    fields = ("channel_id", "project_id", "ws_token", "websocket_url", "websocket_channel")
    return JSONResponse({**{name: accepted[name] for name in fields}, "expires_in": int(gateway.settings.ws_token_ttl)})


def render_request(record: RequestRecord, attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": record.id,
        "channel_id": record.id,
        "workflow": record.workflow,
        "status": record.status,
        "data": record.data,
        "error": record.error,
        "meta": record.meta,
        "metadata": record.metadata,
        "attempts": [{**a, "started_at": _iso(a["started_at"])} for a in attempts],
        "cost_usd": record.cost_usd,
        "usage": (record.meta or {}).get("usage"),
        "created_at": _iso(record.created_at),
        "started_at": _iso(record.started_at),
        "first_token_at": _iso(record.first_token_at),
        "completed_at": _iso(record.completed_at),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _payload(body: AIRequest) -> dict[str, Any]:
    payload = body.model_dump(mode="json", exclude_none=True, by_alias=True)
    for internal in INTERNAL_FIELDS:  # set by the other APIs' routes only (`sluice.surfaces`)
        payload.pop(internal, None)
    return payload
