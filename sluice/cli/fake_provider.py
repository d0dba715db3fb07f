"""`sluice fake-provider`: a fake OpenAI/Anthropic/Gemini/Ollama server on loopback, to rehearse failures."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from sluice.providers.registry import TYPES, fake_protocols

PROTOCOLS = fake_protocols()
# `--kind` takes a wire protocol, or a provider type for the protocol its fake speaks (openai-compatible → openai).
KINDS = {**{protocol: protocol for protocol in PROTOCOLS}, **{n: t.fake for n, t in TYPES.items() if t.fake}}


def fake_provider(
    kind: Annotated[
        str,
        typer.Option(
            help=f"Wire protocol to speak: {', '.join(PROTOCOLS)}; or a provider type, for its protocol "
            f"({', '.join(n for n in KINDS if n not in PROTOCOLS)})."
        ),
    ] = "openai",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 9100,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    text: Annotated[str | None, typer.Option(help="The reply it streams.")] = None,
) -> None:
    """Serve a fake provider that streams in the real wire format and fails on request.

    Point a provider's base_url at the printed URL. Queue behaviours for the next requests with
    POST /_fake/script, e.g. [{"status": 429, "retry_after": 1}, {"cut_after": 3}, {"stall_after": 2}];
    see them with GET /_fake/requests; clear with POST /_fake/reset.
    """
    protocol = KINDS.get(kind)
    if protocol is None:
        typer.echo(f"--kind must be one of {', '.join(KINDS)}", err=True)
        raise typer.Exit(2)
    from sluice.testing import FakeProvider

    async def main() -> None:
        async with FakeProvider(protocol, host=host, port=port, text=text) as fake:
            typer.echo(fake.base_url)  # stdout: only the URL, so scripts can capture it
            typer.echo(f"fake {protocol} provider listening; script it with POST {fake.url}/_fake/script", err=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
