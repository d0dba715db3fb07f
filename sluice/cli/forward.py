"""`sluice forward --to URL`: receive the project's forwarded webhooks over a WebSocket and post them to a local URL.

No public URL is needed: the CLI dials out to the gateway. Each webhook is posted with its body and Standard
Webhooks signature headers unchanged, so the local backend verifies it exactly as in production; the local status
and body go back to the gateway as the delivery attempt's result. The connection is re-established by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime
from typing import Annotated, Any

import typer

FATAL_CLOSE_CODES = {4401: "the API key was refused", 4403: "the API key may not forward webhooks"}
RESPONSE_EXCERPT = 4000


def forward(
    to: Annotated[
        str, typer.Option("--to", help="Local URL that receives each webhook, e.g. http://localhost:4000/webhook")
    ],
    url: Annotated[str, typer.Option(envvar="SLUICE_URL", help="The gateway's base URL.")] = "http://127.0.0.1:8080",
    api_key: Annotated[str | None, typer.Option(envvar="SLUICE_API_KEY", help="API key or SLUICE_MASTER_KEY.")] = None,
) -> None:
    """Forward webhooks to a local URL: workflows with `webhook_url: forward` deliver through this session."""
    key = api_key or os.environ.get("SLUICE_MASTER_KEY")
    if not key:
        typer.echo(
            "pass --api-key (or set SLUICE_API_KEY); create one with: sluice keys create --name forward", err=True
        )
        raise typer.Exit(2)
    try:
        raise typer.Exit(asyncio.run(run_forward(url, key, to)))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def socket_url(gateway_url: str) -> str:
    base = gateway_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/v1/forward"
    return "ws://" + base.removeprefix("http://") + "/v1/forward"


async def run_forward(
    gateway_url: str,
    api_key: str,
    to: str,
    *,
    stop: asyncio.Event | None = None,
    min_delay: float = 0.5,
    max_delay: float = 10.0,
) -> int:
    """Forward until `stop` is set (or forever); returns an exit status (1 when the key is refused)."""
    import httpx
    import websockets
    from rich.console import Console

    console = Console(highlight=False)
    stop = stop or asyncio.Event()
    delay = min_delay
    handlers: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=30, follow_redirects=False, trust_env=False) as http:
        while not stop.is_set():
            try:
                async with websockets.connect(
                    socket_url(gateway_url), additional_headers={"Authorization": f"Bearer {api_key}"}
                ) as ws:
                    ready = json.loads(await ws.recv())
                    console.print(
                        f"[bold green]Ready[/bold green]: forwarding webhooks to {to} "
                        f"(session {ready.get('session_id')})"
                    )
                    delay = min_delay
                    closer = asyncio.create_task(_close_on(stop, ws))
                    try:
                        async for frame in ws:
                            message = json.loads(frame)
                            if message.get("type") == "webhook":
                                task = asyncio.create_task(_deliver(console, http, ws, to, message))
                                handlers.add(task)
                                task.add_done_callback(handlers.discard)
                    finally:
                        closer.cancel()
                    if stop.is_set():
                        break
                    console.print("[yellow]The gateway closed the connection[/yellow]; reconnecting")
            except websockets.ConnectionClosedError as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in FATAL_CLOSE_CODES:
                    console.print(f"[bold red]Refused[/bold red]: {FATAL_CLOSE_CODES[code]}")
                    return 1
                console.print(f"[yellow]Disconnected[/yellow] ({code}); reconnecting in {delay:g}s")
            except (OSError, websockets.InvalidHandshake, websockets.InvalidURI, TimeoutError) as exc:
                console.print(
                    f"[yellow]Cannot reach {gateway_url}[/yellow] ({type(exc).__name__}); retrying in {delay:g}s"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, max_delay)
    return 0


async def _close_on(stop: asyncio.Event, ws: Any) -> None:
    await stop.wait()
    await ws.close()


async def _deliver(console: Any, http: Any, ws: Any, to: str, message: dict[str, Any]) -> None:
    import httpx

    started = asyncio.get_running_loop().time()
    reply: dict[str, Any] = {"type": "webhook_response", "id": message["id"]}
    try:
        response = await http.post(to, content=message["body"].encode(), headers=message["headers"])
        reply.update(status=response.status_code, body=response.text[:RESPONSE_EXCERPT])
    except httpx.HTTPError as exc:
        reply.update(status=None, error=f"{type(exc).__name__}: {exc}"[:300])
    elapsed = (asyncio.get_running_loop().time() - started) * 1000
    status = reply.get("status")
    colour = "green" if status and 200 <= status < 300 else ("yellow" if status else "red")
    shown = status if status is not None else "ERR"
    console.print(
        f"{datetime.now():%H:%M:%S}  [{colour}]{shown}[/{colour}]  {message.get('event_type', 'webhook')}  "
        f"{message.get('delivery_id', '')}  → POST {to}  {elapsed:.0f} ms"
        + (f"  [red]{reply['error']}[/red]" if reply.get("error") else "")
    )
    try:
        await ws.send(json.dumps(reply))
    except Exception:
        # The socket went away: the gateway counts the attempt as failed and retries it on the next session.
        console.print("[yellow]could not report the result; the gateway will retry this webhook[/yellow]")
