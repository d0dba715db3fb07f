"""`sluice fake-provider`: a fake OpenAI/Anthropic/Gemini/Ollama server on loopback, to rehearse failures."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

KINDS = ("openai", "anthropic", "gemini", "ollama")


def fake_provider(
    kind: Annotated[str, typer.Option(help=f"Wire protocol to speak: {', '.join(KINDS)}.")] = "openai",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 9100,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    text: Annotated[str | None, typer.Option(help="The reply it streams.")] = None,
) -> None:
    """Serve a fake provider that streams in the real wire format and fails on request.

    Point a provider's base_url at the printed URL. Queue behaviours for the next requests with
    POST /_fake/script, e.g. [{"status": 429, "retry_after": 1}, {"cut_after": 3}, {"stall_after": 2}];
    see them with GET /_fake/requests; clear with POST /_fake/reset.
    """
    if kind not in KINDS:
        typer.echo(f"--kind must be one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    from sluice.testing import FakeProvider

    async def main() -> None:
        async with FakeProvider(kind, host=host, port=port, text=text) as fake:
            typer.echo(fake.base_url)  # stdout: only the URL, so scripts can capture it
            typer.echo(f"fake {kind} provider listening; script it with POST {fake.url}/_fake/script", err=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
