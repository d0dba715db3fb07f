"""Admin API for API keys: create (the plaintext is in that response only), list, change limits, revoke.

A key may have a budget in USD over a period and per-minute limits (`sluice.budgets`); its listing shows what it
spent in the budget's current period, and what requests under way hold of it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import NotFound
from sluice.gateway import Gateway
from sluice.spend.limits import Limits
from sluice.store import ApiKeyRecord

router = APIRouter(prefix="/v1/admin/keys", tags=["admin: API keys"], responses=ERROR_RESPONSES)


class LimitFields(BaseModel):
    """A budget and per-minute limits (of a key or a project); null or absent: none."""

    model_config = ConfigDict(extra="forbid")

    budget_usd: float | None = Field(default=None, ge=0, description="What it may spend, USD, per budget_period.")
    budget_period: Literal["total", "daily", "monthly"] = Field(
        default="total", description="total (for good), daily or monthly (UTC)."
    )
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute (input + output).")

    def limits(self) -> dict[str, Any]:
        return {"budget_usd": self.budget_usd, "budget_period": self.budget_period, "rpm": self.rpm, "tpm": self.tpm}


class KeyCreate(LimitFields):
    name: str = Field(min_length=1, max_length=200, description="What the key is for, e.g. 'chatbot backend'.")
    admin: bool = Field(default=False, description="Also allow the admin API and the console.")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_key(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "admin": record.is_admin,
        "created_at": _iso(record.created_at),
        "last_used_at": _iso(record.last_used_at),
        "revoked_at": _iso(record.revoked_at),
        "active": record.revoked_at is None,
        **Limits.of(vars(record)).to_json(),
    }


async def with_spend(gateway: Gateway, record: ApiKeyRecord) -> dict[str, Any]:
    """The key with what it spent (in its budget's current period, if it has one)."""
    return {**render_key(record), "spend": await gateway.budgets.state(f"key:{record.id}", Limits.of(vars(record)))}


@router.post("", status_code=201)
async def create_key(request: Request, principal: AdminKey, body: KeyCreate) -> Response:
    """A new key for this project, with its budget and limits. `key` is shown in this response only; the gateway
    keeps just its hash."""
    plaintext, record = await gateway_of(request).store.create_api_key(
        principal.project_id, body.name, admin=body.admin, limits=body.limits()
    )
    return JSONResponse({**render_key(record), "key": plaintext}, status_code=201)


@router.get("")
async def list_keys(request: Request, principal: AdminKey) -> Response:
    """The project's keys, newest first, revoked ones included (never the key itself), with their spend."""
    gateway = gateway_of(request)
    found = await gateway.admin_store.list_api_keys(principal.project_id)
    return JSONResponse({"keys": [await with_spend(gateway, k) for k in found]})


@router.put("/{key_id}/limits")
async def set_key_limits(request: Request, principal: AdminKey, key_id: str, body: LimitFields) -> Response:
    """Replace the key's budget and limits (absent fields: none). Takes effect at once on this instance, within
    seconds on the others."""
    gateway = gateway_of(request)
    if not await gateway.spend_store.set_limits("key", key_id, principal.project_id, body.limits()):
        raise NotFound(f"no key {key_id!r} in this project", code="key_not_found")
    gateway.key_cache.forget(key_id)
    for record in await gateway.admin_store.list_api_keys(principal.project_id):
        if record.id == key_id:
            return JSONResponse(await with_spend(gateway, record))
    raise NotFound(f"no key {key_id!r} in this project", code="key_not_found")


@router.delete("/{key_id}")
async def revoke_key(request: Request, principal: AdminKey, key_id: str) -> Response:
    """Revoke a key: requests using it are refused from now on (401)."""
    if not await gateway_of(request).revoke_api_key(principal.project_id, key_id):
        raise NotFound(f"no active key {key_id!r} in this project", code="key_not_found")
    return JSONResponse({"id": key_id, "revoked": True})
