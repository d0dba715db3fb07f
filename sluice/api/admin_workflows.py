"""Admin API for workflows: list, show, create, edit, delete, and compile a schema (the console's live editor).

A definition is checked by the same loader as the YAML file before anything is written, so an invalid one is
refused with a message naming the field (`chain[0].provider: unknown provider 'x'`) and nothing is half-saved.
Workflows from the config file (and the built-in `demo`) are listed but read-only here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import Conflict, NotFound, Unprocessable
from sluice.gateway import Gateway
from sluice.lifecycle.plan import plan_for
from sluice.store.admin import NameTaken
from sluice.workflows.loader import ConfigError, parse_workflow
from sluice.workflows.model import Workflow
from sluice.workflows.shorthand import ShorthandError, compile_schema

router = APIRouter(prefix="/v1/admin", tags=["admin: workflows"], responses=ERROR_RESPONSES)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")  # no "/": `provider/model` names a provider directly


class WorkflowDefinition(BaseModel):
    """A workflow, in the shape of one entry under `workflows:` in the YAML file. Checked by the workflow loader,
    which rejects unknown keys by name."""

    model_config = ConfigDict(extra="allow")

    chain: Any = Field(default=None, description="Ordered [{provider, model, params?, timeout?, retries?}].")
    schema_: Any = Field(default=None, alias="schema", description="Shorthand ({reply: string}) or JSON Schema.")
    system: Any = Field(default=None, description="System prompt.")
    event: Any = Field(default=None, description="Event name (makes the workflow event-driven).")
    webhook_url: Any = Field(default=None, description="Default webhook URL, or 'forward'.")
    callback: Any = Field(default=None, description="{timeout: 300s, on_timeout: deliver | fail}.")
    echo_fields: Any = Field(default=None, description="Request fields echoed back as customer_data.")
    modelriver_signature: Any = Field(default=None, description="false: webhooks without X-ModelRiver-Signature.")
    continuation: Any = Field(
        default=None, description="auto (default): an answer cut mid-stream goes on on the next attempt; off."
    )
    cancel_when_unwatched_for: Any = Field(
        default=None, description="A duration (30s): cancel a run nobody has followed for that long."
    )
    description: Any = Field(default=None)

    def record(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class WorkflowCreate(WorkflowDefinition):
    name: str = Field(description="Letters, digits, _ . - (no '/').")

    def record(self) -> dict[str, Any]:
        values = super().record()
        values.pop("name", None)
        return values


class SchemaSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    text: str | None = Field(default=None, max_length=100_000, description="Shorthand or JSON Schema as YAML/JSON.")


def invalid(message: str, *, code: str, field: str | None = None) -> JSONResponse:
    """A 422 whose `error.field` names the offending field, so a form can show the message beside it."""
    return JSONResponse({"error": {"code": code, "message": message, "field": field}}, status_code=422)


def config_error(exc: ConfigError, prefix: str) -> JSONResponse:
    message = str(exc)
    if message.startswith(prefix):
        message = message[len(prefix) :].lstrip(".")
    field = message.split(":", 1)[0] if ":" in message else None
    return invalid(message, code="invalid_workflow", field=field)


def source_of(gateway: Gateway, name: str) -> str:
    if name == "demo" and gateway.stored_catalog.is_base_workflow(name):
        return "builtin"
    return "config" if gateway.stored_catalog.is_base_workflow(name) else "stored"


def render_workflow(gateway: Gateway, workflow: Workflow, definition: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": workflow.name,
        "source": source_of(gateway, workflow.name),
        "editable": definition is not None,
        "chain": [
            {"provider": e.provider, "model": e.model, "params": e.params, "timeout": e.timeout, "retries": e.retries}
            for e in workflow.chain
        ],
        "system": workflow.system,
        "event": workflow.event,
        "webhook_url": workflow.webhook_url,
        "callback": {"timeout": workflow.callback.timeout, "on_timeout": workflow.callback.on_timeout},
        "echo_fields": list(workflow.echo_fields),
        "modelriver_signature": workflow.modelriver_signature,
        "continuation": workflow.continuation,
        "cancel_when_unwatched_for": workflow.cancel_when_unwatched_for,
        "json_schema": workflow.schema,
        "definition": definition,
    }


@router.get("/workflows")
async def list_workflows(request: Request, principal: AdminKey) -> Response:
    """Every workflow this project runs (config file, built-in, and the project's stored ones); stored ones carry
    their editable `definition`. Stored records that no longer validate are listed under `problems`."""
    gateway = gateway_of(request)
    stored = {w.name: w.definition for w in await gateway.admin_store.list_workflows(principal.project_id)}
    rendered = [
        render_workflow(gateway, wf, stored.get(name) if source_of(gateway, name) == "stored" else None)
        for name, wf in sorted(gateway.catalog.of_project(principal.project_id).workflows.items())
    ]
    problems = {
        k.removeprefix("workflows."): v
        for k, v in gateway.stored_catalog.problems.items()
        if k.startswith("workflows.") and k.removeprefix("workflows.") in stored
    }
    return JSONResponse({"workflows": rendered, "problems": problems})


@router.get("/workflows/{name}")
async def show_workflow(request: Request, principal: AdminKey, name: str) -> Response:
    gateway = gateway_of(request)
    workflow = gateway.catalog.of_project(principal.project_id).workflows.get(name)
    if workflow is None:
        raise NotFound(f"no workflow {name!r} in this project", code="workflow_not_found")
    stored = (
        await gateway.admin_store.get_workflow(principal.project_id, name)
        if source_of(gateway, name) == "stored"
        else None
    )
    return JSONResponse(render_workflow(gateway, workflow, stored.definition if stored else None))


async def _save(request: Request, principal: AdminKey, name: str, record: dict[str, Any], *, create: bool) -> Response:
    gateway = gateway_of(request)
    if not NAME.match(name):
        return invalid(
            "name: use letters, digits, '_', '.' or '-' (up to 200, no '/')", code="invalid_workflow", field="name"
        )
    if gateway.stored_catalog.is_base_workflow(name):
        raise Conflict(f"workflow {name!r} is defined in the config file; edit it there", code="workflow_read_only")
    try:
        workflow = parse_workflow(name, record, gateway.catalog.of_project(principal.project_id).providers)
    except ConfigError as exc:
        return config_error(exc, f"workflows.{name}")
    # The SSRF guard at registration too (it runs again at submit and before every delivery attempt).
    await gateway.delivery.check_request(principal.project_id, plan_for({}, workflow))
    try:
        await gateway.admin_store.save_workflow(principal.project_id, name, record, create=create)
    except NameTaken:
        raise Conflict(f"a workflow named {name!r} already exists", code="workflow_exists") from None
    await gateway.refresh_catalog()
    return JSONResponse(render_workflow(gateway, workflow, record), status_code=201 if create else 200)


@router.post("/workflows", status_code=201)
async def create_workflow(request: Request, principal: AdminKey, body: WorkflowCreate) -> Response:
    """Create a stored workflow; it can be used by requests as soon as this returns."""
    return await _save(request, principal, body.name, body.record(), create=True)


@router.put("/workflows/{name}")
async def edit_workflow(request: Request, principal: AdminKey, name: str, body: WorkflowDefinition) -> Response:
    """Replace a stored workflow's definition."""
    gateway = gateway_of(request)
    if not gateway.stored_catalog.is_base_workflow(name) and not await gateway.admin_store.get_workflow(
        principal.project_id, name
    ):
        raise NotFound(f"no stored workflow {name!r} in this project", code="workflow_not_found")
    return await _save(request, principal, name, body.record(), create=False)


@router.delete("/workflows/{name}", status_code=204)
async def delete_workflow(request: Request, principal: AdminKey, name: str) -> Response:
    gateway = gateway_of(request)
    if gateway.stored_catalog.is_base_workflow(name):
        raise Conflict(f"workflow {name!r} is defined in the config file; remove it there", code="workflow_read_only")
    if not await gateway.admin_store.delete_workflow(principal.project_id, name):
        raise NotFound(f"no stored workflow {name!r} in this project", code="workflow_not_found")
    await gateway.refresh_catalog()
    return Response(status_code=204)


@router.post("/schemas/compile")
async def compile_schema_source(_: AdminKey, body: SchemaSource) -> Response:
    """Compile a schema (shorthand or JSON Schema, as an object or YAML/JSON text) to the strict JSON Schema
    requests are validated against. Errors name the field and the column."""
    source: Any = body.schema_
    if body.text is not None:
        try:
            source = yaml.safe_load(body.text) if body.text.strip() else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            return invalid(
                f"the schema is not valid YAML/JSON{where}: {getattr(exc, 'problem', exc)}",
                code="invalid_schema",
                field="schema",
            )
    if source is None:
        raise Unprocessable("send 'schema' (an object) or 'text' (YAML/JSON)", code="invalid_schema")
    try:
        compiled = compile_schema(source)
    except ShorthandError as exc:
        body_ = {
            "code": "invalid_schema",
            "message": str(exc),
            "field": exc.path,
            "reason": exc.reason,
            "text": exc.text or None,
            "column": exc.pos + 1 if exc.text else None,
        }
        return JSONResponse({"error": body_}, status_code=422)
    return JSONResponse({"schema": source, "json_schema": compiled})
