"""Webhook bodies: DESIGN.md §5's fields with ModelRiver's beside them, so backends written for either work.

callback step   type "task.ai_generated", event = the request's event name, callback_required true
lifecycle       type "task.completed" | "task.failed" | "task.cancelled",
                event "request.completed" | "request.failed" | "request.cancelled"
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sluice.compat.customer import customer_data as echoed_fields
from sluice.events import utc_timestamp
from sluice.store import RequestRecord
from sluice.workflows.model import Workflow

AI_GENERATED = "task.ai_generated"
LIFECYCLE_TYPES = {
    "completed": ("task.completed", "request.completed"),
    "failed": ("task.failed", "request.failed"),
    "cancelled": ("task.cancelled", "request.cancelled"),
}
# ModelRiver's `status` of each end (`cancelled` is Sluice's: ModelRiver has no cancel).
LIFECYCLE_STATUS = {"completed": "success", "failed": "error", "cancelled": "cancelled"}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def customer_data(body: dict[str, Any], workflow: Workflow | None) -> dict[str, Any]:
    """The workflow's echo fields and the request's extra top-level fields: the same `customer_data` as the
    Phoenix pushes and `format: wrapped` (sluice.compat.customer)."""
    return echoed_fields(body, workflow.echo_fields if workflow else ())


def _common(record: RequestRecord, workflow: Workflow | None) -> dict[str, Any]:
    return {
        "channel_id": record.id,
        "request_id": record.id,
        "project_id": record.project_id,
        "workflow": record.workflow,
        "metadata": record.metadata or {},
        "customer_data": customer_data(record.body, workflow),
        "timestamp": utc_timestamp(),
    }


def callback_payload(
    record: RequestRecord,
    workflow: Workflow | None,
    *,
    event: str,
    data: Any,
    meta: dict[str, Any],
    callback_url: str,
    expires_at: datetime,
) -> dict[str, Any]:
    return {
        "type": AI_GENERATED,
        "event": event,
        "status": "ai_generated",
        **_common(record, workflow),
        "ai_response": {"data": data, "meta": meta},
        "data": data,
        "meta": meta,
        "callback_url": callback_url,
        "callback_expires_at": iso(expires_at),
        "callback_required": True,
    }


def lifecycle_payload(
    record: RequestRecord,
    workflow: Workflow | None,
    *,
    status: str,
    data: Any,
    meta: dict[str, Any],
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    kind, event = LIFECYCLE_TYPES[status]
    payload: dict[str, Any] = {
        "type": kind,
        "event": event,
        "status": LIFECYCLE_STATUS[status],
        **_common(record, workflow),
        "ai_response": {"data": data, "meta": meta},
        "data": data,
        "meta": meta,
        "callback_url": None,
        "callback_required": False,
    }
    if error is not None:
        payload["error"] = error
    return payload
