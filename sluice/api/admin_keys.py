"""Admin API for API keys: create (the plaintext is in that response only), list, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import NotFound
from sluice.store import ApiKeyRecord

router = APIRouter(prefix="/v1/admin/keys", tags=["admin: API keys"], responses=ERROR_RESPONSES)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    }


@router.post("", status_code=201)
async def create_key(request: Request, principal: AdminKey, body: KeyCreate) -> Response:
    """A new key for this project. `key` is shown in this response only; the gateway keeps just its hash."""
    plaintext, record = await gateway_of(request).store.create_api_key(
        principal.project_id, body.name, admin=body.admin
    )
    return JSONResponse({**render_key(record), "key": plaintext}, status_code=201)


@router.get("")
async def list_keys(request: Request, principal: AdminKey) -> Response:
    """The project's keys, newest first, revoked ones included (never the key itself)."""
    found = await gateway_of(request).admin_store.list_api_keys(principal.project_id)
    return JSONResponse({"keys": [render_key(k) for k in found]})


@router.delete("/{key_id}")
async def revoke_key(request: Request, principal: AdminKey, key_id: str) -> Response:
    """Revoke a key: requests using it are refused from now on (401)."""
    if not await gateway_of(request).revoke_api_key(principal.project_id, key_id):
        raise NotFound(f"no active key {key_id!r} in this project", code="key_not_found")
    return JSONResponse({"id": key_id, "revoked": True})
