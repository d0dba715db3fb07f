"""Admin API for webhooks: deliveries (list, show with attempts, replay), signing secrets (rotate with an overlap
window) and the project's SSRF setting. Secrets appear in a response only once, when created."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.delivery.signing import SECRET_PREFIX, generate_secret, standard_webhooks_secret
from sluice.errors import Conflict, NotFound, Unprocessable
from sluice.store.deliveries import DeliveryRecord

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin: webhooks"], responses=ERROR_RESPONSES)

_TOKEN_IN_URL = re.compile(r"([?&]token=)[^&\"]+")
DEFAULT_OVERLAP = 24 * 3600.0


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float = Field(
        default=DEFAULT_OVERLAP,
        ge=0,
        le=30 * 24 * 3600,
        description="How long the previous secrets keep signing beside the new one.",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=64,
        pattern=r"^[!-~]+$",
        description="Use this secret instead of a generated one, e.g. the one a ModelRiver backend holds "
        "(its WEBHOOK_SECRET): printable ASCII, no spaces.",
    )


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_private_urls: bool = Field(description="Allow webhook URLs on private, loopback or link-local addresses.")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redact(text: str) -> str:
    """Callback tokens are credentials: never echo them back."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


def render_delivery(delivery: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "request_id": delivery.request_id,
        "channel_id": delivery.request_id,
        "type": delivery.type,
        "url": redact(delivery.url),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "created_at": _iso(delivery.created_at),
        "finished_at": _iso(delivery.finished_at),
    }


@router.get("/deliveries")
async def list_deliveries(
    request: Request,
    principal: AdminKey,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    request_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The project's webhook deliveries, newest first (`status=failed` is the dead-letter list)."""
    webhooks = gateway_of(request).delivery.webhooks
    found = await webhooks.list_deliveries(principal.project_id, status=status, request_id=request_id, limit=limit)
    return JSONResponse({"deliveries": [render_delivery(d) for d in found]})


async def _delivery(request: Request, principal: AdminKey, delivery_id: str) -> DeliveryRecord:
    delivery = await gateway_of(request).delivery.webhooks.get_delivery(delivery_id)
    if delivery is None or delivery.project_id != principal.project_id:
        raise NotFound(f"no webhook delivery {delivery_id!r} in this project", code="delivery_not_found")
    return delivery


@router.get("/deliveries/{delivery_id}")
async def show_delivery(request: Request, principal: AdminKey, delivery_id: str) -> Response:
    """One delivery with its payload and every attempt (status code, latency, response excerpt)."""
    delivery = await _delivery(request, principal, delivery_id)
    attempts = await gateway_of(request).delivery.webhooks.list_attempts(delivery.id)
    body = render_delivery(delivery)
    body["payload"] = orjson.loads(redact(delivery.body))
    body["attempt_log"] = [{**a, "started_at": _iso(a["started_at"])} for a in attempts]
    return JSONResponse(body)


@router.post("/deliveries/{delivery_id}/replay", status_code=202)
async def replay_delivery(request: Request, principal: AdminKey, delivery_id: str) -> Response:
    """Send a delivered or dead-lettered webhook again (same `webhook-id`, so receivers can dedupe)."""
    delivery = await _delivery(request, principal, delivery_id)
    if not await gateway_of(request).delivery.replay(delivery.id):
        raise Conflict(
            "this delivery is still being attempted; replay it once it has finished", code="delivery_in_progress"
        )
    found = await gateway_of(request).delivery.webhooks.get_delivery(delivery.id)
    assert found is not None
    return JSONResponse(render_delivery(found), status_code=202)


@router.get("/secrets")
async def list_secrets(request: Request, principal: AdminKey) -> Response:
    """The project's signing secrets (ids and validity only)."""
    found = await gateway_of(request).delivery.webhooks.list_secrets(principal.project_id)
    return JSONResponse(
        {"secrets": [{**s, "created_at": _iso(s["created_at"]), "expires_at": _iso(s["expires_at"])} for s in found]}
    )


@router.post("/secrets/rotate", status_code=201)
async def rotate_secret(request: Request, principal: AdminKey, body: RotateSecret | None = None) -> Response:
    """Create a new signing secret (shown only in this response). Until `previous_valid_until`, webhooks carry a
    signature for the previous secrets too, so receivers can switch without dropping any."""
    options = body or RotateSecret()
    secret = options.secret or generate_secret()
    if secret.startswith(SECRET_PREFIX):
        try:
            base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise Unprocessable("a 'whsec_' secret must be base64 after the prefix", code="invalid_secret") from None
    secret_id, until = await gateway_of(request).delivery.webhooks.add_secret(
        principal.project_id, secret, overlap=options.overlap_seconds
    )
    return JSONResponse(
        {
            "id": secret_id,
            "secret": secret,
            "standard_webhooks_secret": standard_webhooks_secret(secret),
            "previous_valid_until": _iso(until),
        },
        status_code=201,
    )


@router.get("/settings")
async def get_settings(request: Request, principal: AdminKey) -> Response:
    allowed = await gateway_of(request).delivery.webhooks.allow_private_urls(principal.project_id)
    return JSONResponse({"allow_private_urls": allowed, "development": gateway_of(request).settings.development})


@router.put("/settings")
async def put_settings(request: Request, principal: AdminKey, body: WebhookSettings) -> Response:
    await gateway_of(request).delivery.webhooks.set_allow_private_urls(principal.project_id, body.allow_private_urls)
    return JSONResponse({"allow_private_urls": body.allow_private_urls})
