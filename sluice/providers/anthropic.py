"""Anthropic Messages (`POST /v1/messages`, SSE events `message_start`, `content_block_delta`, `message_delta`,
`message_stop`, `ping`, and `error` — e.g. `overloaded_error` — inside the stream).

Errors are `{"type": "error", "error": {"type", "message"}}`; HTTP 529 means overloaded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from sluice.providers._http import Client, drain, merge, open_stream, parse_chunk, sse_events
from sluice.providers.base import Chunk, ProviderRequest, Usage, system_and_turns
from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    StreamBroken,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # required by the API

# In-stream error types → what they mean for the run loop.
_STREAM_ERRORS: dict[str, type[ProviderError]] = {
    "overloaded_error": ProviderUnavailable,
    "api_error": ProviderUnavailable,
    "rate_limit_error": RateLimited,
    "invalid_request_error": InvalidRequest,
    "request_too_large": InvalidRequest,
    "authentication_error": AuthenticationFailed,
    "permission_error": AuthenticationFailed,
    "not_found_error": ModelNotFound,
}
_PARAM_NAMES = {"stop": "stop_sequences"}


class AnthropicProvider:
    kind = "anthropic"

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        api_key: str | None = None,
        base_url: str = "https://api.anthropic.com",
        headers: dict[str, str] | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.name = name
        self.client = client
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.headers = {
            "anthropic-version": API_VERSION,
            **({"x-api-key": api_key} if api_key else {}),
            **(headers or {}),
        }
        self.max_tokens = max_tokens

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        system, turns = system_and_turns(request)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": self.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in turns],
            "stream": True,
        }
        if system:
            body["system"] = system
        body.update({_PARAM_NAMES.get(k, k): v for k, v in request.params.items()})
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        # Native structured output forces one tool; its input JSON, streamed as `input_json_delta`, is the answer.
        forced_tool = (request.extra.get("tool_choice") or {}).get("name")
        tool_blocks: set[int] = set()
        async with open_stream(
            self.client,
            self.name,
            self.url,
            self.body(request),
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            events = sse_events(response)
            async for event, data in events:
                if event == "ping":
                    continue
                payload = parse_chunk(self.name, data)
                if not isinstance(payload, dict):
                    raise StreamBroken(f"{self.name}: unexpected event data ({data[:80]!r})")
                kind = payload.get("type", event)
                if kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text") and not forced_tool:
                        yield Chunk(text=delta["text"])
                    elif delta.get("type") == "input_json_delta" and payload.get("index") in tool_blocks:
                        if delta.get("partial_json"):
                            yield Chunk(text=delta["partial_json"])
                elif kind == "content_block_start":
                    block = payload.get("content_block") or {}
                    if block.get("type") == "tool_use" and block.get("name") == forced_tool:
                        tool_blocks.add(payload.get("index", 0))
                elif kind == "message_start":
                    usage = (payload.get("message") or {}).get("usage") or {}
                    input_tokens = usage.get("input_tokens") or 0
                    output_tokens = usage.get("output_tokens") or 0
                elif kind == "message_delta":
                    output_tokens = (payload.get("usage") or {}).get("output_tokens") or output_tokens
                    stop_reason = (payload.get("delta") or {}).get("stop_reason") or stop_reason
                elif kind == "message_stop":
                    yield Chunk(usage=Usage(input_tokens, output_tokens), finish_reason=stop_reason or "end_turn")
                    await drain(events)
                    return
                elif kind == "error":
                    error = payload.get("error") or {}
                    cls = _STREAM_ERRORS.get(error.get("type", ""), ProviderUnavailable)
                    raise cls(f"{self.name} failed mid-stream: {describe_error(payload)}")
        raise StreamBroken(f"{self.name}: the stream ended without message_stop")

    async def aclose(self) -> None:
        return None


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('type', 'error')})"
    return None
