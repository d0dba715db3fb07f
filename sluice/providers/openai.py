"""OpenAI Chat Completions (`POST /chat/completions`, streamed as SSE `chat.completion.chunk`s ending in `[DONE]`).

Usage comes in a last chunk with empty `choices` when `stream_options.include_usage` is set. Errors are
`{"error": {"message", "type", "param", "code"}}`, also inside the stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sluice.providers._http import Client, bearer, drain, merge, open_stream, parse_chunk, sse_events
from sluice.providers.base import Chunk, ProviderRequest, Usage
from sluice.providers.errors import ProviderUnavailable, StreamBroken

_PARAM_NAMES = {"max_tokens": "max_completion_tokens"}


class OpenAIProvider:
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    param_names: dict[str, str] = _PARAM_NAMES

    def __init__(
        self, name: str, *, client: Client, api_key: str | None = None, base_url: str | None = None,
        headers: dict[str, str] | None = None, stream_usage: bool = True,
    ) -> None:
        self.name = name
        self.client = client
        self.url = (base_url or self.default_base_url).rstrip("/") + "/chat/completions"
        self.headers = {**bearer(api_key), **(headers or {})}
        self.stream_usage = stream_usage

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        body.update({self.param_names.get(k, k): v for k, v in request.params.items()})
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[Chunk]:
        async with open_stream(self.client, self.name, self.url, self.body(request), headers=self.headers,
                               describe=describe_error, connect_timeout=request.connect_timeout) as response:
            events = sse_events(response)
            async for _, data in events:
                if data == "[DONE]":
                    await drain(events)
                    return
                chunk = parse_chunk(self.name, data)
                if not isinstance(chunk, dict):
                    raise StreamBroken(f"{self.name}: unexpected chunk in the stream ({data[:80]!r})")
                if chunk.get("error"):
                    raise ProviderUnavailable(f"{self.name} failed mid-stream: {describe_error(chunk)}")
                text, finish = "", None
                choices = chunk.get("choices") or []
                if choices:
                    text = (choices[0].get("delta") or {}).get("content") or ""
                    finish = choices[0].get("finish_reason")
                usage = chunk.get("usage")
                if text or finish or usage:
                    yield Chunk(text=text, finish_reason=finish, usage=Usage(
                        input_tokens=usage.get("prompt_tokens") or 0,
                        output_tokens=usage.get("completion_tokens") or 0) if usage else None)
        raise StreamBroken(f"{self.name}: the stream ended without [DONE]")

    async def aclose(self) -> None:
        return None  # the shared client is closed by the provider pool


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        kind = error.get("code") or error.get("type")
        return f"{error.get('message', '')} ({kind})" if kind else str(error.get("message", ""))
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # some compatible servers
        return body["error"]
    return None
