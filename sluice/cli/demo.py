"""`sluice demo`: the gateway and the chatbot example in one process, ready to open in a browser.

The gateway runs with the embedded defaults (SQLite under the data directory, in-process broker, the simulated
provider) in development mode, so webhooks may go to the chatbot on loopback. The demo creates what the chatbot
needs (an API key, a webhook signing secret) and prints the URL of the chat page.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.settings import Settings

if TYPE_CHECKING:  # the CLI imports this module: keep uvicorn and FastAPI out of `sluice --help`
    import uvicorn
    from fastapi import FastAPI

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
# A source checkout has examples/chatbot; a wheel carries a copy as sluice/_chatbot (pyproject force-include).
_CHATBOT_DIRS = (_PACKAGE_DIR.parent / "examples" / "chatbot", _PACKAGE_DIR / "_chatbot")


def load_chatbot() -> ModuleType:
    """The chatbot example's `backend` module, imported from its file."""
    for directory in _CHATBOT_DIRS:
        path = directory / "backend.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("sluice_chatbot_backend", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses resolve their module by name
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError("the chatbot example is missing (looked in: " + ", ".join(map(str, _CHATBOT_DIRS)) + ")")


@dataclass(frozen=True)
class Credentials:
    api_key: str
    admin_key: str
    webhook_secret: str


async def provision(gateway_app: FastAPI) -> Credentials:
    """An API key for the chatbot, an admin key for the console, and the project's webhook signing secret."""
    from sluice.delivery.signing import generate_secret

    gateway = gateway_app.state.gateway
    project = gateway.default_project_id
    api_key, _ = await gateway.store.create_api_key(project, "sluice-demo")
    admin_key, _ = await gateway.store.create_api_key(project, "sluice-demo-console", admin=True)
    store = gateway.delivery.webhooks
    secrets = await store.active_secrets(project)
    if not secrets:
        secrets = [generate_secret()]
        await store.add_secret(project, secrets[0], overlap=0)
    return Credentials(api_key=api_key, admin_key=admin_key, webhook_secret=secrets[0])


async def start_server(app: Any, host: str, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    import uvicorn

    from sluice.api.wsframes import SERVER_OPTIONS

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", **SERVER_OPTIONS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises: e.g. the port is taken
            raise RuntimeError(f"the server on port {port} stopped during start-up")
        await asyncio.sleep(0.02)
    return server, task


async def run_demo(
    *,
    host: str,
    port: int,
    app_port: int,
    data_dir: Path | None,
    config: Path | None,
    announce: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    page_dir: Path | None = None,
) -> None:
    """Serve until either server stops, or `stop` is set (tests embed the demo this way)."""
    from sluice.api.app import create_app

    settings = Settings.from_env(host=host, port=port, data_dir=data_dir, config_path=config, env="development")
    gateway_app = create_app(settings)
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = [await start_server(gateway_app, host, port)]
    waiter: asyncio.Future[Any] | None = None
    try:
        credentials = await provision(gateway_app)
        chatbot = load_chatbot()
        wanted = os.environ.get("CHATBOT_WEBHOOKS", "1") not in ("0", "false", "no")
        webhooks = wanted
        chatbot_app = chatbot.create_app(
            chatbot.ChatbotSettings(
                sluice_url=settings.base_url,
                api_key=credentials.api_key,
                public_url=f"http://{host}:{app_port}",
                webhook_secret=credentials.webhook_secret,
                webhooks=webhooks,
                page_dir=page_dir,
            )
        )
        servers.append(await start_server(chatbot_app, host, app_port))
        announce(f"Sluice gateway  {settings.base_url}   (API docs: {settings.base_url}/docs)")
        announce(f"API key         {credentials.api_key}")
        announce(f"Console         {settings.base_url}/console   (admin key: {credentials.admin_key})")
        announce(f"Webhook step    {'on: the backend enriches each answer' if webhooks else 'off (streaming only)'}")
        announce(f"\n  Open the chat: http://{host}:{app_port}/\n")
        announce("Press Ctrl+C to stop.")
        waits: set[asyncio.Future[Any]] = {task for _, task in servers}
        if stop is not None:
            waiter = asyncio.ensure_future(stop.wait())
            waits.add(waiter)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if waiter is not None:
            waiter.cancel()
        for server, _ in servers:
            server.should_exit = True
        await asyncio.gather(*(task for _, task in servers), return_exceptions=True)


def demo(
    port: Annotated[int, typer.Option(help="Port of the gateway.")] = 8080,
    app_port: Annotated[int | None, typer.Option(help="Port of the chat page (default: port + 1).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Default: .sluice")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file of providers and workflows.")] = None,
    page_dir: Annotated[Path | None, typer.Option(help="Serve another build of the page, e.g. the React one.")] = None,
) -> None:
    """Run the gateway and the chatbot example (FastAPI backend + chat page), and print the URL to open."""
    try:
        asyncio.run(
            run_demo(
                host=host,
                port=port,
                app_port=app_port or port + 1,
                data_dir=data_dir,
                config=config,
                announce=typer.echo,
                page_dir=page_dir,
            )
        )
    except KeyboardInterrupt:
        pass
