"""`POST /v1/callback/{channel_id}`: the backend's enriched result (or its rejection) ends the channel."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import JSONResponse, Response

from sluice.api.auth import bearer, gateway_of, principal_from
from sluice.api.schemas import ERROR_RESPONSES
from sluice.errors import Unprocessable

router = APIRouter(tags=["callbacks"])


@router.post("/v1/callback/{channel_id}", responses={**ERROR_RESPONSES, 410: ERROR_RESPONSES[404]})
async def receive_callback(
    request: Request,
    channel_id: str,
    token: Annotated[str | None, Query(description="The single-use token from the webhook's `callback_url`.")] = None,
) -> Response:
    """Post the enriched object (bare, or as `{data, task_id, metadata}`), or `{error, message}` to reject the result.

    Authenticated by the `callback_url`'s token, or by the project's API key as a bearer token."""
    gateway = gateway_of(request)
    project_id, admin = None, False
    if not token:
        credentials: HTTPAuthorizationCredentials | None = await bearer(request)
        if credentials is not None:
            principal = await principal_from(request, credentials)
            project_id, admin = principal.project_id, principal.operator  # another project's admin may not
    raw = await request.body()
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Unprocessable("the callback body is not valid JSON", code="invalid_callback") from None
    result = await gateway.delivery.callbacks.receive(channel_id, body, token=token, project_id=project_id, admin=admin)
    return JSONResponse(result)
