"""`sluice chat`: stream one answer over SSE and print it as it grows."""

from __future__ import annotations

import sys

import httpx
import orjson
from rich.console import Console

from sluice.events import DeltaEvent, ErrorEvent, FailoverEvent, PartialEvent, ResetEvent, ResponseEvent, parse_event

console = Console(stderr=True)


def growing_text(event: PartialEvent) -> str | None:
    """The text a reader watches grow: the first string field of the partial object."""
    if isinstance(event.data, dict):
        for value in event.data.values():
            if isinstance(value, str):
                return value
    return None


async def run_chat(url: str, api_key: str, workflow: str, message: str) -> int:
    body = {"workflow": workflow, "messages": [{"role": "user", "content": message}], "stream": True}
    headers = {"Authorization": f"Bearer {api_key}"}
    shown = ""
    structured: bool | None = None  # decided by the first delta of each attempt: JSON output waits for partials
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None)) as client:
        async with client.stream("POST", "/v1/ai", json=body, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                error = response.json().get("error", {})
                console.print(f"[red]{response.status_code} {error.get('code')}[/red]: {error.get('message')}")
                return 1
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                match parse_event(orjson.loads(line[6:])):
                    case PartialEvent() as partial:
                        text = growing_text(partial) or ""
                        if text.startswith(shown):
                            sys.stdout.write(text[len(shown) :])
                            sys.stdout.flush()
                            shown = text
                    case DeltaEvent(text=delta):
                        if structured is None:
                            structured = delta.lstrip().startswith(("{", "["))
                        if not structured:
                            sys.stdout.write(delta)
                            sys.stdout.flush()
                            shown += delta
                    case ResetEvent(reason=reason):
                        console.print(f"\n[yellow]reset: {reason}[/yellow]")
                        shown, structured = "", None
                    case FailoverEvent(from_=source, to=target, error=error):
                        console.print(f"[yellow]failover {source} → {target}: {error}[/yellow]")
                    case ResponseEvent(data=data):
                        sys.stdout.write("\n")
                        if structured:
                            console.print_json(data=data)
                        return 0
                    case ErrorEvent(code=code, message=message):
                        console.print(f"\n[red]error {code}[/red]: {message}")
                        return 1
    console.print("[red]the stream ended without a result[/red]")
    return 1
