"""Admin API for providers: the types and their options, list, add, edit, delete, test connection.

Secrets (the options a type's model marks secret, `sluice.providers.options.secret`) go in `credentials`, encrypted
at rest with a key derived from SLUICE_SECRET_KEY and never returned: a response says only which credential names
are set; everything else in `options`. Both are validated like the config file's records, and a problem is answered
with a 422 whose `field` names it (`options.api_kye`). Providers from the config file are listed with their
non-secret options only.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sluice.admin.catalog import provider_config
from sluice.admin.probe import probe
from sluice.api.admin_workflows import NAME, invalid
from sluice.api.auth import AdminKey, gateway_of
from sluice.api.schemas import ERROR_RESPONSES
from sluice.crypto import CredentialsUnreadable
from sluice.errors import Conflict, NotFound, Unprocessable
from sluice.gateway import Gateway
from sluice.providers.config import ProviderConfig
from sluice.providers.registry import TYPES, ProviderType
from sluice.store.admin import NameTaken, StoredProvider
from sluice.workflows.loader import ConfigError, parse_provider
from sluice.workflows.model import Catalog

router = APIRouter(prefix="/v1/admin/providers", tags=["admin: providers"], responses=ERROR_RESPONSES)


class ProviderEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(default=None, description=f"One of {', '.join(TYPES)}.")
    options: dict[str, Any] | None = Field(default=None, description="Non-secret settings, e.g. base_url.")
    credentials: dict[str, Any] | None = Field(
        default=None, description="Secrets, e.g. {api_key}; encrypted at rest, never returned. Omit to keep."
    )


class ProviderCreate(ProviderEdit):
    name: str
    type: str


class ProbeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, description="Model to try; default: one a workflow uses with it.")


def render_stored(stored: StoredProvider, problem: str | None, credential_names: list[str]) -> dict[str, Any]:
    return {
        "name": stored.name,
        "type": stored.type,
        "source": "stored",
        "editable": True,
        "options": stored.options,
        "credentials_set": credential_names,
        "problem": problem,
        "updated_at": stored.updated_at.isoformat(),
    }


def render_config(config: ProviderConfig, source: str) -> dict[str, Any]:
    return {
        "name": config.name,
        "type": config.type,
        "source": source,
        "editable": False,
        "options": {k: v for k, v in config.options.items() if k not in config.entry.secrets},
        "credentials_set": [],
        "missing_env": list(config.missing_env),
        "problem": None,
    }


@cache
def render_type(entry: ProviderType) -> dict[str, Any]:
    return {
        "name": entry.name,
        "description": entry.description,
        "http": entry.http,  # False: built in, no URL or key
        "secrets": sorted(entry.secrets),
        "structured_output": list(entry.dialects),  # the first is the default
        "options": entry.options.model_json_schema(),  # each option's type, default, description; `secret: true`
    }


def _validate(name: str, type_: str, options: dict[str, Any], credentials: dict[str, Any]) -> ProviderConfig:
    """Raise ConfigError naming the field (`options.base_url`, `credentials.api_key`) if the loader would refuse
    this provider."""
    entry = TYPES.get(type_)
    if entry is None:
        raise ConfigError(f"type: must be one of {', '.join(TYPES)}, not {type_!r}")
    secret = sorted(set(options) & entry.secrets)
    if secret:
        raise ConfigError(f"options.{secret[0]}: put secrets in 'credentials' so they are encrypted at rest")
    overlap = sorted(set(options) & set(credentials))
    if overlap:
        raise ConfigError(f"credentials.{overlap[0]}: also given in 'options'; give it once")
    try:
        return parse_provider(name, {"type": type_, **options, **credentials}, os.environ)
    except ConfigError as exc:
        where = f"providers.{name}"
        lines = [_in_body(line.removeprefix(where), credentials) for line in str(exc).splitlines()]
        raise ConfigError("\n".join(lines)) from exc


def _in_body(problem: str, credentials: dict[str, Any]) -> str:
    """`.api_kye: unknown option` → `options.api_kye: …` (or `credentials.…`); `: needs base_url` → `options: …`."""
    if problem.startswith(":"):
        return "options" + problem
    key = problem[1:].split(":", 1)[0].split(".", 1)[0]
    return ("credentials" if key in credentials else "options") + problem


def _field(exc: ConfigError) -> str | None:
    message = str(exc)
    return message.split(":", 1)[0] if ":" in message else None


def _stored_credentials(gateway: Gateway, stored: StoredProvider | None) -> dict[str, Any]:
    if stored is None or not stored.credentials:
        return {}
    return gateway.stored_catalog.cipher.decrypt(stored.credentials)


def _credential_names(gateway: Gateway, stored: StoredProvider) -> list[str]:
    try:
        return sorted(_stored_credentials(gateway, stored))
    except CredentialsUnreadable:
        return []


@router.get("/types")
async def provider_types(_: AdminKey) -> Response:
    """The provider types this build has: for each, its description, the structured-output dialects it can be asked
    in, and its options as a JSON Schema (types, defaults, descriptions; credentials marked `secret: true`)."""
    return JSONResponse({"types": [render_type(entry) for entry in TYPES.values()]})


@router.get("")
async def list_providers(request: Request, principal: AdminKey) -> Response:
    """Every provider this project may use: built-in and config-file ones (read-only) and its stored ones."""
    gateway = gateway_of(request)
    problems = gateway.stored_catalog.problems
    stored = {p.name: p for p in await gateway.admin_store.list_providers(principal.project_id)}
    rendered = [
        render_config(config, "builtin" if name == "simulated" else "config")
        for name, config in gateway.stored_catalog.base.providers.items()
    ]
    for name, record in stored.items():
        if not gateway.stored_catalog.is_base_provider(name):
            problem = problems.get(f"providers.{name}")
            rendered.append(render_stored(record, problem, _credential_names(gateway, record)))
    return JSONResponse({"providers": sorted(rendered, key=lambda p: p["name"])})


@router.post("", status_code=201)
async def create_provider_route(request: Request, principal: AdminKey, body: ProviderCreate) -> Response:
    """Add a provider; workflows can name it as soon as this returns."""
    return await _save(
        request, principal, body.name, body.type, body.options or {}, body.credentials or {}, create=True
    )


@router.put("/{name}")
async def edit_provider(request: Request, principal: AdminKey, name: str, body: ProviderEdit) -> Response:
    """Change a stored provider. Omitted `options` or `credentials` keep their stored values."""
    gateway = gateway_of(request)
    stored = await gateway.admin_store.get_provider(principal.project_id, name)
    if stored is None:
        raise _not_stored(gateway, name)
    credentials = body.credentials if body.credentials is not None else _stored_credentials(gateway, stored)
    options = body.options if body.options is not None else stored.options
    return await _save(request, principal, name, body.type or stored.type, options, credentials, create=False)


async def _save(
    request: Request,
    principal: AdminKey,
    name: str,
    type_: str,
    options: dict[str, Any],
    credentials: dict[str, Any],
    *,
    create: bool,
) -> Response:
    gateway = gateway_of(request)
    if not NAME.match(name):
        return invalid(
            "name: use letters, digits, '_', '.' or '-' (up to 200, no '/')", code="invalid_provider", field="name"
        )
    if gateway.stored_catalog.is_base_provider(name):
        raise Conflict(f"provider {name!r} is defined in the config file; edit it there", code="provider_read_only")
    try:
        _validate(name, type_, options, credentials)
    except ConfigError as exc:
        return invalid(str(exc), code="invalid_provider", field=_field(exc))
    token = gateway.stored_catalog.cipher.encrypt(credentials) if credentials else None
    try:
        await gateway.admin_store.save_provider(principal.project_id, name, type_, options, token, create=create)
    except NameTaken:
        raise Conflict(f"a provider named {name!r} already exists", code="provider_exists") from None
    await gateway.refresh_catalog()
    stored = await gateway.admin_store.get_provider(principal.project_id, name)
    assert stored is not None
    return JSONResponse(render_stored(stored, None, sorted(credentials)), status_code=201 if create else 200)


@router.delete("/{name}", status_code=204)
async def delete_provider(request: Request, principal: AdminKey, name: str) -> Response:
    """Remove a stored provider; refused while a workflow's chain names it."""
    gateway = gateway_of(request)
    if await gateway.admin_store.get_provider(principal.project_id, name) is None:
        raise _not_stored(gateway, name)
    workflows = gateway.catalog.of_project(principal.project_id).workflows
    users = sorted(w.name for w in workflows.values() if any(e.provider == name for e in w.chain))
    if users:
        raise Conflict(
            f"provider {name!r} is used by workflows {', '.join(users)}; change them first", code="provider_in_use"
        )
    await gateway.admin_store.delete_provider(principal.project_id, name)
    await gateway.refresh_catalog()
    return Response(status_code=204)


@router.post("/{name}/test")
async def test_provider(request: Request, principal: AdminKey, name: str, body: ProbeRequest | None = None) -> Response:
    """Send one tiny streamed request through the provider and report whether text came back, and how fast."""
    gateway = gateway_of(request)
    stored = await gateway.admin_store.get_provider(principal.project_id, name)
    visible = gateway.catalog.of_project(principal.project_id)
    try:
        config = provider_config(stored, gateway.stored_catalog.cipher) if stored else visible.providers.get(name)
    except (CredentialsUnreadable, ConfigError) as exc:
        raise Conflict(f"provider {name!r} cannot be used: {exc}", code="provider_unusable") from None
    if config is None:
        raise NotFound(f"no provider {name!r}", code="provider_not_found")
    model = (body.model if body else None) or _model_for(visible, name, config)
    if model is None:
        raise Unprocessable("name a model to test with ('model')", code="model_required")
    result = await probe(config, model)
    error = {"code": result.error_code, "message": result.error_message} if not result.ok else None
    return JSONResponse(
        {
            "ok": result.ok,
            "provider": name,
            "model": model,
            "latency_ms": result.latency_ms,
            "sample": result.sample,
            "error": error,
        }
    )


def _model_for(catalog: Catalog, name: str, config: ProviderConfig) -> str | None:
    for workflow in catalog.workflows.values():
        for entry in workflow.chain:
            if entry.provider == name:
                return entry.model
    return "sim-1" if config.type == "simulated" else None


def _not_stored(gateway: Gateway, name: str) -> Exception:
    if gateway.stored_catalog.is_base_provider(name):
        return Conflict(f"provider {name!r} is defined in the config file; edit it there", code="provider_read_only")
    return NotFound(f"no stored provider {name!r} in this project", code="provider_not_found")
