"""Liveness and readiness probes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from sluice import __version__
from sluice.api.auth import gateway_of

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", responses={503: {"description": "The store is not reachable"}})
async def readyz(request: Request) -> Response:
    """The store answers, so requests can be accepted."""
    try:
        async with gateway_of(request).store.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable", "store": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})
