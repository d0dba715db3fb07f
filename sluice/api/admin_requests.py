"""Admin API for the request log: search (workflow, status, time range, a metadata value), detail (the body,
attempts, timings, final data, webhook deliveries and, while the broker still holds it, the channel's events), and
re-running a finished request (a dead-lettered `job_crashed` one, typically) as a new request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from sluice.api.admin_webhooks import render_delivery
from sluice.api.auth import AdminKey, gateway_of
from sluice.api.requests import render_request
from sluice.api.schemas import ERROR_RESPONSES, RerunAccepted
from sluice.errors import Conflict, NotFound, Unprocessable
from sluice.gateway import Gateway, Principal
from sluice.lifecycle.plan import CHAT, plan_of
from sluice.store import RequestRecord
from sluice.store.admin import RequestFilter
from sluice.store.store import as_utc
from sluice.surfaces import api_of

router = APIRouter(prefix="/v1/admin/requests", tags=["admin: request log"], responses=ERROR_RESPONSES)

MAX_TIMELINE = 5_000  # events shown in a detail; a long answer's deltas beyond that are cut


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds() * 1000, 1)


def summarize(record: RequestRecord) -> dict[str, Any]:
    """A request as a row of the log."""
    meta = record.meta or {}
    return {
        "id": record.id,
        "workflow": record.workflow,
        "status": record.status,
        "mode": record.mode,
        "api": api_of(record.body),
        "provider": meta.get("provider"),
        "model": meta.get("model"),
        "attempts": len(meta.get("attempts") or []),
        "metadata": record.metadata,
        "error_code": (record.error or {}).get("code"),
        "created_at": _iso(record.created_at),
        "completed_at": _iso(record.completed_at),
        "duration_ms": _ms(record.created_at, record.completed_at),
        "ttft_ms": _ms(record.started_at, record.first_token_at),
        "cost_usd": record.cost_usd,
        "usage": meta.get("usage"),
        "key_id": record.key_id,
    }


def _metadata_filter(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    key, sep, wanted = value.partition("=")
    if not key.strip():
        raise Unprocessable("metadata: expected key=value (or just key)", code="invalid_filter")
    return key.strip(), (wanted if sep else None)


@router.get("")
async def search_requests(
    request: Request,
    principal: AdminKey,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO 8601).")] = None,
    metadata: Annotated[
        str | None,
        Query(max_length=500, description="`key=value`: metadata[key] equals value; `key`: metadata has key."),
    ] = None,
    before: Annotated[datetime | None, Query(description="Cursor: `next_before` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The project's requests, newest first, filtered; page with `before=<next_before>`."""
    key, value = _metadata_filter(metadata)
    where = RequestFilter(
        project_id=principal.project_id,
        workflow=workflow or None,
        status=status or None,
        since=as_utc(since),
        until=as_utc(until),
        metadata_key=key,
        metadata_value=value,
        before=as_utc(before),
        limit=limit,
    )
    found = await gateway_of(request).admin_store.search_requests(where)
    next_before = _iso(found[-1].created_at) if len(found) == limit else None
    return JSONResponse({"requests": [summarize(r) for r in found], "next_before": next_before})


@router.get("/{request_id}")
async def request_detail(request: Request, principal: AdminKey, request_id: str) -> Response:
    """Everything about one request. `timeline.held` is false once the broker no longer keeps its events."""
    gateway = gateway_of(request)
    record = await _project_request(gateway, principal, request_id)
    detail = {**summarize(record), **render_request(record, await gateway.store.list_attempts(record.id))}
    detail["messages"] = record.body.get("messages")
    detail["request"] = {k: v for k, v in record.body.items() if k != "messages"}
    detail["timeline"] = await timeline(gateway, record.id)
    deliveries = await gateway.delivery.webhooks.list_deliveries(principal.project_id, request_id=record.id)
    detail["deliveries"] = [render_delivery(d) for d in deliveries]
    return JSONResponse(detail)


@router.post("/{request_id}/rerun", status_code=202, response_model=RerunAccepted)
async def rerun_request(request: Request, principal: AdminKey, request_id: str) -> Response:
    """Run a finished request again, as a new request with the same body, workflow and webhook (the original stays
    as it ended: a request's end is final). Answers like `POST /v1/ai/async`, plus `rerun_of`."""
    gateway = gateway_of(request)
    record = await _project_request(gateway, principal, request_id)
    if not record.finished:
        raise Conflict(
            f"request {request_id!r} is {record.status}: only a finished request can be re-run",
            code="request_not_finished",
        )
    if plan_of(record, None).kind != CHAT:
        raise Unprocessable(
            "an embeddings request's vectors go to its caller only: nobody would receive a re-run's",
            code="rerun_not_supported",
        )
    owner = Principal(project_id=record.project_id, key_id=principal.key_id, admin=principal.admin)
    submission = await gateway.submit(owner, {**record.body, "rerun_of": record.id}, mode="async")
    body = {**gateway.accepted_body(submission.record, principal.key_id), "rerun_of": record.id}
    return JSONResponse(body, status_code=202)


async def _project_request(gateway: Gateway, principal: Principal, request_id: str) -> RequestRecord:
    record = await gateway.store.get_request(request_id)
    if record is None or record.project_id != principal.project_id:
        raise NotFound(f"no request {request_id!r} in this project", code="request_not_found")
    return record


async def timeline(gateway: Gateway, channel_id: str) -> dict[str, Any]:
    info = await gateway.broker.log_info(channel_id)
    if info is None:
        return {"held": False, "events": [], "truncated": False}
    subscription = gateway.broker.subscribe(channel_id, 0)
    events: list[dict[str, Any]] = []
    try:
        while len(events) < MAX_TIMELINE:
            batch = await subscription.next_batch(0)  # no waiting: what is held right now
            if not batch:
                break
            events.extend(orjson.loads(wire.data) for wire in batch)
    finally:
        subscription.close()
    return {"held": True, "events": events[:MAX_TIMELINE], "truncated": len(events) >= MAX_TIMELINE}
