"""Admin API for projects: the master key creates projects (each with its first admin key) and sets their budgets and
limits; a project's admin key sees its own project only. A project's budget caps every key of the project together;
its admins cannot raise it (a key's own limits, they can: `admin_keys`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import JSONResponse, Response

from sluice.api.admin_keys import LimitFields
from sluice.api.auth import AdminKey, MasterKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import Conflict, NotFound
from sluice.gateway import Gateway
from sluice.spend.limits import Limits
from sluice.store.admin import NameTaken

router = APIRouter(prefix="/v1/admin/projects", tags=["admin: projects"], responses=ERROR_RESPONSES)


class ProjectCreate(LimitFields):
    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The project's name: letters, digits, '_', '-', '.'.",
    )
    key_name: str = Field(default="admin", min_length=1, max_length=200, description="Its first admin key's name.")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def render_project(gateway: Gateway, row: dict[str, Any]) -> dict[str, Any]:
    limits = Limits.of(row)
    return {
        "id": row["id"],
        "name": row["name"],
        "created_at": _iso(row["created_at"]),
        "default": row["id"] == gateway.default_project_id,
        **limits.to_json(),
        "spend": await gateway.budgets.state(f"project:{row['id']}", limits),
    }


@router.get("")
async def list_projects(request: Request, principal: AdminKey) -> Response:
    """Every project for the master key; a project's admin key sees its own."""
    gateway = gateway_of(request)
    rows = await gateway.admin_store.list_projects(None if principal.operator else principal.project_id)
    return JSONResponse({"projects": [await render_project(gateway, row) for row in rows]})


@router.get("/current")
async def current_project(request: Request, principal: AdminKey) -> Response:
    """The project of the calling key (the default project for the master key)."""
    gateway = gateway_of(request)
    rows = await gateway.admin_store.list_projects(principal.project_id)
    return JSONResponse(await render_project(gateway, rows[0]))


@router.post("", status_code=201)
async def create_project(request: Request, principal: MasterKey, body: ProjectCreate) -> Response:
    """A new project with its budget and limits, and its first admin key (`key`, shown in this response only)."""
    gateway = gateway_of(request)
    try:
        project_id = await gateway.admin_store.create_project(body.name, body.limits())
    except NameTaken:
        raise Conflict(f"a project named {body.name!r} exists already", code="project_exists") from None
    plaintext, key = await gateway.store.create_api_key(project_id, body.key_name, admin=True)
    row = (await gateway.admin_store.list_projects(project_id))[0]
    project = await render_project(gateway, row)
    return JSONResponse({**project, "admin_key": {"id": key.id, "name": key.name, "key": plaintext}}, status_code=201)


@router.put("/{project_id}/limits")
async def set_project_limits(request: Request, principal: MasterKey, project_id: str, body: LimitFields) -> Response:
    """Replace a project's budget and limits (master key only; absent fields: none)."""
    gateway = gateway_of(request)
    if not await gateway.spend_store.set_limits("project", project_id, None, body.limits()):
        raise NotFound(f"no project {project_id!r}", code="project_not_found")
    gateway.budgets.forget_project(project_id)
    row = (await gateway.admin_store.list_projects(project_id))[0]
    return JSONResponse(await render_project(gateway, row))
