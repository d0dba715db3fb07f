"""`/metrics` for Prometheus, and the console's Overview numbers (`/v1/admin/stats`).

`/metrics` is unauthenticated, as Prometheus scrapers expect: it holds counts and timings, never request content.
Keep it off the public interface (bind or firewall) if even those should stay private.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.observability.metrics import CONTENT_TYPE
from sluice.observability.stats import circuit, dashboard
from sluice.store.store import now

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Counters (requests, attempts, failovers, webhook deliveries) and histograms (latency, time to first token,
    gateway overhead) of this instance."""
    return Response(gateway_of(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/v1/admin/stats", tags=["admin: overview"], responses=ERROR_RESPONSES)
async def stats(
    request: Request,
    principal: AdminKey,
    minutes: Annotated[int, Query(ge=5, le=24 * 60, description="Window length.")] = 60,
) -> Response:
    """Per-minute requests, errors, retries/failovers, p50/p99 latency and TTFT over the window (from the store,
    so every instance agrees), and the circuit state of every provider/model a workflow uses."""
    gateway = gateway_of(request)
    moment = now()
    window = timedelta(minutes=minutes)
    step = timedelta(minutes=1) if minutes <= 120 else timedelta(minutes=max(1, minutes // 120))
    since = moment - window
    body = dashboard(
        await gateway.admin_store.request_timings(principal.project_id, since),
        await gateway.admin_store.attempt_rows(principal.project_id, since),
        moment,
        window,
        step,
    )
    body["providers"] = await provider_health(request, principal.project_id)
    return JSONResponse(body)


async def provider_health(request: Request, project_id: str) -> list[dict[str, Any]]:
    gateway = gateway_of(request)
    catalog = gateway.catalog.of_project(project_id)
    keys = sorted({(e.provider, e.model) for w in catalog.workflows.values() for e in w.chain})
    wall = time.time()  # breaker records hold wall-clock times (shared between instances)
    found = []
    for provider, model in keys:
        record = await gateway.broker.breaker_state(f"{provider}/{model}")
        config = catalog.providers.get(provider)
        found.append(
            {
                "provider": provider,
                "model": model,
                "type": config.type if config else None,
                "configured": config is not None and not config.missing_env,
                **circuit(record, wall),
            }
        )
    return found
