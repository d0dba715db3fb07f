"""Ollama (`POST /api/chat`, streamed as NDJSON: one JSON object per line, the last with `"done": true` and the
counts `prompt_eval_count` / `eval_count`). Errors are `{"error": "…"}`, also as a line inside the stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from sluice.providers._http import Client, bearer, drain, merge, ndjson_lines, open_stream, parse_chunk
from sluice.providers.base import Chunk, ProviderRequest, Usage
from sluice.providers.errors import ProviderUnavailable, StreamBroken

_OPTION_NAMES = {"max_tokens": "num_predict"}


class OllamaProvider:
    kind = "ollama"

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        base_url: str = "http://127.0.0.1:11434",
        api_key: str | None = None,
        headers: dict[str, str] | None = None,
        keep_alive: str | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.url = base_url.rstrip("/") + "/api/chat"
        self.headers = {**bearer(api_key), **(headers or {})}  # a key only matters behind an auth proxy
        self.keep_alive = keep_alive

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if request.params:
            body["options"] = {_OPTION_NAMES.get(k, k): v for k, v in request.params.items()}
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        async with open_stream(
            self.client,
            self.name,
            self.url,
            self.body(request),
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            lines = ndjson_lines(response)
            async for line in lines:
                payload = parse_chunk(self.name, line)
                if not isinstance(payload, dict):
                    raise StreamBroken(f"{self.name}: unexpected line in the stream ({line[:80]!r})")
                if payload.get("error"):
                    raise ProviderUnavailable(f"{self.name} failed mid-stream: {payload['error']}")
                text = (payload.get("message") or {}).get("content") or ""
                if payload.get("done"):
                    usage = Usage(payload.get("prompt_eval_count") or 0, payload.get("eval_count") or 0)
                    yield Chunk(text=text, usage=usage, finish_reason=payload.get("done_reason") or "stop")
                    await drain(lines)
                    return
                if text:
                    yield Chunk(text=text)
        raise StreamBroken(f"{self.name}: the stream ended before a line with done: true")

    async def aclose(self) -> None:
        return None


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return None
