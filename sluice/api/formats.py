"""`POST /v1/ai` with ModelRiver's `format`: `wrapped` (`{data, customer_data, meta}`) or `raw` (a provider-style
`chat.completion` with the run's metadata in `X-Sluice-*` / `X-ModelRiver-*` headers). Without `format` the answer
is Sluice's own (`SyncResult`)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from sluice.compat.customer import customer_data
from sluice.compat.envelope import modelriver_meta, raw_completion, raw_headers, wrapped
from sluice.events import ErrorEvent, Event, ResponseEvent
from sluice.gateway import Gateway
from sluice.store import RequestRecord


async def formatted_result(gateway: Gateway, record: RequestRecord, terminal: Event, fmt: str) -> Response:
    """Render a finished sync request's terminal event (`response` or `error`) in ModelRiver's `fmt`."""
    workflow = gateway.catalog.workflow(record.workflow, record.project_id)
    customer = customer_data(record.body, workflow.echo_fields if workflow else ())
    if isinstance(terminal, ResponseEvent):
        sluice_meta = terminal.meta
        if fmt == "raw":
            return JSONResponse(
                raw_completion(record.id, terminal.data, sluice_meta),
                headers=raw_headers(sluice_meta, customer, record.workflow),
            )
        meta = modelriver_meta(sluice_meta, status="success", workflow=record.workflow)
        return JSONResponse(wrapped(terminal.data, customer, meta))
    # The error event carries no meta; the attempts are in the store (each is written before the run moves on).
    failed_meta = {"workflow": record.workflow, "attempts": await gateway.store.list_attempts(record.id)}
    if isinstance(terminal, ErrorEvent):
        error = {"code": terminal.code, "message": terminal.message}
    else:
        error = {"code": "internal_error", "message": "the run ended unexpectedly"}
    if fmt == "raw":
        body = {"error": {"message": error["message"], "type": "upstream_error", "param": None, "code": error["code"]}}
        return JSONResponse(body, status_code=502, headers=raw_headers(failed_meta, customer, record.workflow))
    # ModelRiver answers a valid request whose providers all failed with 200 and `data: null` plus `error`.
    meta = modelriver_meta(failed_meta, status="error", http_status=502, workflow=record.workflow)
    return JSONResponse(wrapped(None, customer, meta, error=error))
