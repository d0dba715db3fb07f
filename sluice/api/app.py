"""`create_app`: the whole HTTP surface in one place — middleware, then every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from sluice import __version__
from sluice.api import channels, ops, requests
from sluice.api.errors import install_error_handlers
from sluice.api.limits import BodySizeLimit
from sluice.gateway import Gateway
from sluice.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = Gateway(settings)
        await gateway.start()
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.aclose()

    app = FastAPI(
        title="Sluice",
        version=__version__,
        description="Self-hosted AI gateway: async requests, failover, structured outputs, webhooks, streaming.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(requests.router)
    app.include_router(channels.router)
    app.include_router(ops.router)
    return app
