"""`GET /v1/admin/spend`: what the project spent over the last days, per day, workflow, model and key — from the
store (every instance's requests), for the console's spend page. The master key sees every project's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.spend.usage import sum_usd
from sluice.store.store import now

router = APIRouter(tags=["admin: overview"], responses=ERROR_RESPONSES)


@router.get("/v1/admin/spend")
async def spend(
    request: Request,
    principal: AdminKey,
    days: Annotated[int, Query(ge=1, le=366, description="How many days back (UTC, today included).")] = 30,
) -> Response:
    """Cost (USD), requests and tokens over the last `days`: the total, then per day, per workflow, per model
    (`provider/model`: every attempt, failed ones too) and per API key (with its name where this project has it)."""
    gateway = gateway_of(request)
    moment = now()
    since = (moment - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    project_id = None if principal.operator else principal.project_id
    store = gateway.spend_store
    by_day = await store.breakdown(project_id, since, "day")
    by_key = await store.breakdown(project_id, since, "key")
    names = {key.id: key.name for key in await gateway.admin_store.list_api_keys(principal.project_id)}
    names["master"] = "master key"
    days_seen = {row["label"]: row for row in by_day}
    every_day = []
    for offset in range(days):  # every day of the window, spent or not, for the chart
        label = (since + timedelta(days=offset)).strftime("%Y-%m-%d")
        row = days_seen.get(label, {"cost_usd": 0.0, "requests": 0})
        every_day.append({"day": label, "cost_usd": row["cost_usd"], "requests": row["requests"]})
    return JSONResponse(
        {
            "since": since.isoformat().replace("+00:00", "Z"),
            "days": days,
            "total_usd": sum_usd(row["cost_usd"] for row in by_day),
            "requests": sum(row["requests"] for row in by_day),
            "by_day": every_day,
            "by_workflow": _named(await store.breakdown(project_id, since, "workflow"), "workflow"),
            "by_model": _named(await store.breakdown(project_id, since, "model"), "model"),
            "by_key": [{**row, "name": names.get(row["key"])} for row in _named(by_key, "key")],
        }
    )


def _named(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Rows with their label under `name`, the most expensive first."""
    found = [{name: row.pop("label"), **row} for row in rows]
    return sorted(found, key=lambda row: row["cost_usd"], reverse=True)
