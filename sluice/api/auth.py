"""API-key authentication. A `ws_token` is never accepted here: it only opens its own channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sluice.errors import Forbidden, Unauthorized
from sluice.gateway import Gateway, Principal

bearer = HTTPBearer(auto_error=False, description="A project API key (`sk_sluice_…`) or SLUICE_MASTER_KEY.")


def gateway_of(request: Request) -> Gateway:
    return request.app.state.gateway


async def principal_from(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    return await principal_for(gateway_of(request), credentials.credentials if credentials else None)


async def principal_for(gateway: Gateway, api_key: str | None) -> Principal:
    """The caller of an API key (401 if missing, unknown or revoked), counted against SLUICE_RATE_LIMIT (429)."""
    if not api_key:
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'", code="missing_api_key")
    principal = await gateway.authenticate(api_key)
    if principal is None:
        raise Unauthorized("the API key is not valid (unknown or revoked)", code="invalid_api_key")
    await gateway.quotas.check_rate(principal.key_id)  # 429 + Retry-After past SLUICE_RATE_LIMIT
    return principal


def bearer_key(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, as FastAPI's HTTPBearer reads it (None otherwise)."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    return await principal_from(request, credentials)


async def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    principal = await principal_from(request, credentials)
    if not principal.admin:
        raise Forbidden("this route needs an admin key", code="admin_required")
    return principal


async def require_master(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    principal = await principal_from(request, credentials)
    if not principal.operator:
        raise Forbidden("only the master key (SLUICE_MASTER_KEY) may do this", code="master_key_required")
    return principal


ApiKey = Annotated[Principal, Depends(require_api_key)]
AdminKey = Annotated[Principal, Depends(require_admin)]
MasterKey = Annotated[Principal, Depends(require_master)]
