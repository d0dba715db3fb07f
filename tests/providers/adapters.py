"""What the provider translation tests share: an adapter aimed at its wire-faithful fake, the chunks it streams, the
usage the fake counts, generated call ids, and the pieces of a `/v1/chat/completions` tools request and answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson

from sluice.providers.base import Chunk, Provider, ProviderRequest, Usage
from sluice.providers.pool import ProviderPool
from sluice.testing import FakeProvider
from sluice.workflows.loader import build_catalog
from tests.conftest import StartGateway, write_config

A = TypeVar("A", bound=Provider)

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="  # a 1x1 PNG
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
CALL_ID = re.compile(r"call_[0-9a-f]{24}")  # an id Sluice made up for a call the provider gave none
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}  # get_weather's


@asynccontextmanager
async def adapter(fake: FakeProvider, cls: type[A], **record: Any) -> AsyncIterator[A]:
    """The `cls` adapter a one-provider catalog builds from `record`, aimed at `fake`; its pool closes on leaving."""
    providers = {"p": {**record, "base_url": fake.base_url}}
    pool = ProviderPool(build_catalog({"providers": providers, "workflows": {}}, {}))
    try:
        provider = pool.get("p")
        assert isinstance(provider, cls)
        yield provider
    finally:
        await pool.aclose()


async def collect(provider: Provider, request: ProviderRequest) -> list[Chunk]:
    """Every chunk the adapter streams for `request`."""
    return [chunk async for chunk in provider.stream(request)]


def fake_usage(fake: FakeProvider, units: int) -> Usage:
    """The fake's usage: input tokens from the size of the body it got, output tokens = pieces it streamed."""
    return Usage(len(orjson.dumps(fake.requests[-1].body)) // 16, units)


def generated_ids(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with each generated call id (unique, so random) checked and replaced by `<id>`."""
    out = []
    for chunk in chunks:
        calls = []
        for call in chunk.tool_calls:
            assert call.id is not None and CALL_ID.fullmatch(call.id), call.id
            calls.append(replace(call, id="<id>"))
        out.append(replace(chunk, tool_calls=tuple(calls)))
    return out


def tools_body(tool_choice: str, description: str | None = None) -> dict[str, Any]:
    """The `tools` (get_weather of a city) and `tool_choice` of a `/v1/chat/completions` body."""
    function: dict[str, Any] = {"name": "get_weather", "parameters": CITY}
    if description is not None:
        function["description"] = description
    return {"tools": [{"type": "function", "function": function}], "tool_choice": tool_choice}


def openai_call(call_id: str, arguments: str) -> dict[str, Any]:
    """A get_weather call as `/v1/chat/completions` answers it."""
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def sse_events(text: str) -> list[dict[str, Any]]:
    """The JSON events of a streamed `/v1/chat/completions` answer (`[DONE]` left out)."""
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


async def logged(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """A pass-through's record, once it is in the log (it is written when the run has finished)."""
    for _ in range(250):
        found = await client.get(f"/v1/requests/{request_id}")
        if found.status_code != 404:
            return dict(found.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {request_id} never reached the log")


async def assert_image_fails_over(
    start_gateway: StartGateway, tmp_path: Path, kind: str, model: str, image_url: str, options: str = ""
) -> None:
    """A `/v1/chat/completions` image the first provider of the chain (of `kind`, with its YAML `options`) cannot
    take: refused before anything is sent to it, and answered by the next one (OpenAI)."""
    async with FakeProvider(kind) as first, FakeProvider("openai", text="A cat.") as backup:
        config = f"""
providers:
  first: {{type: {kind}, {options}base_url: "{first.base_url}"}}
  backup: {{type: openai, api_key: k, base_url: "{backup.base_url}"}}
workflows:
  vision:
    chain:
      - {{provider: first, model: {model}}}
      - {{provider: backup, model: gpt-x}}
"""
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        image = {"type": "image_url", "image_url": {"url": image_url}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={"model": "vision", "messages": messages})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "A cat."
            record = await logged(client, response.headers["x-request-id"])
        assert first.requests == []  # refused before anything was sent
        attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
        assert attempts == [("first", "failed", "unsupported_by_provider"), ("backup", "succeeded", None)]
