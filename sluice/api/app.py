"""`create_app`: the whole HTTP surface in one place — middleware, then every router."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sluice import __version__
from sluice.api import (
    admin_keys,
    admin_metrics,
    admin_projects,
    admin_providers,
    admin_requests,
    admin_spend,
    admin_webhooks,
    admin_workflows,
    anthropic_messages,
    callbacks,
    channels,
    embeddings,
    models,
    openai_compat,
    ops,
    requests,
    responses,
    tunnel,
)
from sluice.api import phoenix as phoenix_socket
from sluice.api import sdk as sdk_files
from sluice.api.errors import install_error_handlers
from sluice.api.hotpath import SluiceAPI
from sluice.api.limits import BodySizeLimit
from sluice.api.openapi import document_websockets
from sluice.console.routes import router as console_router
from sluice.gateway import Gateway
from sluice.observability.logging import RequestIdMiddleware, configure_logging
from sluice.settings import Settings


def create_app(settings: Settings | None = None, *, reload_on_sighup: bool = False) -> FastAPI:
    """The gateway's ASGI app. `reload_on_sighup`: for a process the app owns (`sluice serve`), SIGHUP reloads the
    config file."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.extra.get("log_format"))
        gateway = Gateway(settings)
        await gateway.start()
        app.state.gateway = gateway
        reloads: set[asyncio.Task[bool]] = set()
        sighup = reload_on_sighup and hasattr(signal, "SIGHUP")  # not on Windows
        if sighup:

            def reload() -> None:
                task = asyncio.create_task(gateway.reload_config(), name="sluice-config-sighup")
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
        try:
            yield
        finally:
            if sighup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            await gateway.aclose()

    app = SluiceAPI(
        max_body_bytes=settings.max_body_bytes,
        title="Sluice",
        version=__version__,
        description="Self-hosted AI gateway: async requests, failover, structured outputs, webhooks, streaming.",
        lifespan=lifespan,  # no ORJSONResponse default: it is deprecated (a warning on every dict-returning route)
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    app.include_router(requests.router)
    app.include_router(openai_compat.router)
    app.include_router(anthropic_messages.router)
    app.include_router(responses.router)
    app.include_router(embeddings.router)
    app.include_router(models.router)
    app.include_router(channels.router)
    app.include_router(phoenix_socket.router)
    app.include_router(callbacks.router)
    app.include_router(admin_webhooks.router)
    app.include_router(tunnel.router)
    app.include_router(ops.router)
    app.include_router(admin_projects.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_providers.router)
    app.include_router(admin_workflows.router)
    app.include_router(admin_requests.router)
    app.include_router(admin_metrics.router)
    app.include_router(admin_spend.router)
    app.include_router(console_router)
    app.include_router(sdk_files.router)
    document_websockets(app)
    return app
