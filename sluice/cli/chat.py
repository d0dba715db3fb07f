"""`sluice chat`: stream one answer over SSE and print it as it grows."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
from rich.console import Console

console = Console(stderr=True)


def growing_text(event: dict[str, Any]) -> str | None:
    """The text a reader watches grow: the raw delta, or the first string field of the partial object."""
    if event["type"] == "partial" and isinstance(event.get("data"), dict):
        for value in event["data"].values():
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
                event = json.loads(line[6:])
                kind = event["type"]
                if kind == "partial":
                    text = growing_text(event) or ""
                    if text.startswith(shown):
                        sys.stdout.write(text[len(shown) :])
                        sys.stdout.flush()
                        shown = text
                elif kind == "delta":
                    if structured is None:
                        structured = event["text"].lstrip().startswith(("{", "["))
                    if not structured:
                        sys.stdout.write(event["text"])
                        sys.stdout.flush()
                        shown += event["text"]
                elif kind == "reset":
                    console.print(f"\n[yellow]reset: {event['reason']}[/yellow]")
                    shown, structured = "", None
                elif kind == "failover":
                    console.print(f"[yellow]failover {event['from']} → {event['to']}: {event['error']}[/yellow]")
                elif kind == "response":
                    sys.stdout.write("\n")
                    if structured:
                        console.print_json(data=event["data"])
                    return 0
                elif kind == "error":
                    console.print(f"\n[red]error {event['code']}[/red]: {event['message']}")
                    return 1
    console.print("[red]the stream ended without a result[/red]")
    return 1
