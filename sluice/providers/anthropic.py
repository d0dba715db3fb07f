"""Anthropic Messages (`POST /v1/messages`, SSE events `message_start`, `content_block_start`/`_delta`/`_stop`,
`message_delta`, `message_stop`, `ping`, and `error` — e.g. `overloaded_error` — inside the stream), and
`POST /v1/messages/count_tokens`.

Errors are `{"type": "error", "error": {"type", "message"}}`; HTTP 529 means overloaded. The request and answer
translation, field by field, is in docs/translation.md ("Anthropic Messages"); in short:

- turns are `user`/`assistant` messages of content blocks (`text`, `image`, `tool_use`, `tool_result`); a tool result
  is a `tool_result` block in a user turn, and consecutive turns of one role are merged, as the API needs them to
  alternate (tool results first in their turn, as it also needs) (`anthropic_request`);
- a request that came in through Sluice's own `/v1/messages` is sent as the client's body instead, with its
  `anthropic-beta` header (`anthropic_request.native_body`);
- the client's tools become `tools`/`tool_choice`; the workflow's schema, in the `tool` dialect, adds the forced
  `respond` tool (`sluice.structured.native`), whose streamed input is the answer's TEXT, while the client's tools'
  `tool_use` blocks become `ToolCallDelta`s numbered in answer order, and thinking blocks `ThinkingDelta`s
  (`anthropic_answer`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from sluice.providers._http import Client, drain, merge, open_stream, parse_chunk, sse_events
from sluice.providers.anthropic_answer import AnswerReader
from sluice.providers.anthropic_request import (
    json_instruction,
    native_body,
    params,
    structured_tool,
    tool_choice,
    tool_spec,
    turns,
    with_prefill,
    with_system,
)
from sluice.providers.base import Chunk, ProviderRequest, system_and_turns
from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ModelNotFound,
    PrefillRefused,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    StreamBroken,
    Unsupported,
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


class AnthropicProvider:
    kind = "anthropic"
    reads_native = True  # a `/v1/messages` request's own body is sent as it came (`ProviderRequest.native`)

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
        self.without_prefill: set[str] = set()  # models that refused a prefill (see `stream`)

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The Messages request body; `Unsupported` (before anything is sent) for what the API cannot take."""
        if request.native is not None:
            return native_body(request, request.native, self.name)
        system, _ = system_and_turns(request)
        if request.response_format is not None and request.schema is None:  # a workflow's schema wins
            system = "\n\n".join(part for part in (system, json_instruction(request.response_format)) if part)
        messages = turns(request.messages)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": self.max_tokens,
            "messages": with_prefill(messages, request.prefill) if request.prefill is not None else messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        body.update(params(request.params))
        extra = dict(request.extra)
        forced = extra.pop("tool_choice", None)  # the structured-output tool, forced (`tool` dialect)
        structured = [tool for tool in extra.pop("tools", ()) if isinstance(tool, dict)]
        clash = {tool.get("name") for tool in structured} & {tool.name for tool in request.tools}
        if clash:
            raise Unsupported(
                f"{self.name}: a tool of the request is named {', '.join(sorted(map(str, clash)))}, "
                "the name structured output uses on Anthropic"
            )
        tools = [tool_spec(tool) for tool in request.tools] + structured
        if tools:
            body["tools"] = tools
            choice = tool_choice(request, forced)
            if choice is not None:
                body["tool_choice"] = choice
        return merge(body, extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        # Always streamed, also for a caller that takes the answer whole (`request.stream` is a hint).
        if request.prefill is not None and request.model in self.without_prefill:
            raise PrefillRefused(f"{self.name}: {request.model} does not continue a prefilled answer")
        body = self.body(request)
        answer = AnswerReader(structured_tool(request.extra))
        try:
            async with (
                open_stream(
                    self.client,
                    self.name,
                    self.url,
                    body,
                    headers=self.headers_for((request.native or {}).get("beta")),
                    describe=describe_error,
                    connect_timeout=request.connect_timeout,
                ) as response,
                aclosing(self._chunks(response, answer)) as chunks,
            ):
                async for chunk in chunks:
                    yield chunk
        except InvalidRequest as error:
            if request.prefill is None or "prefill" not in error.message.lower():
                raise
            # Claude 4.6 and later: "This model does not support assistant message prefill." Remembered per model,
            # so later continuations on it are asked by instruction without this round trip.
            self.without_prefill.add(request.model)
            raise PrefillRefused(f"{self.name}: {error.message}", status_code=error.status_code) from error

    async def _chunks(self, response: Any, answer: AnswerReader) -> AsyncGenerator[Chunk, None]:
        """The answer's chunks from the SSE events, up to `message_stop` (a stream that ends before it is broken)."""
        events = sse_events(response)
        async for event, data in events:
            if event == "ping":
                continue
            payload = parse_chunk(self.name, data)
            if not isinstance(payload, dict):
                raise StreamBroken(f"{self.name}: unexpected event data ({data[:80]!r})")
            kind = payload.get("type", event)
            if kind == "error":
                error = payload.get("error") or {}
                cls = _STREAM_ERRORS.get(error.get("type", ""), ProviderUnavailable)
                raise cls(f"{self.name} failed mid-stream: {describe_error(payload)}")
            chunk = answer.read(kind, payload)
            if chunk is not None:
                yield chunk
            if kind == "message_stop":
                await drain(events)
                return
        raise StreamBroken(f"{self.name}: the stream ended without message_stop")

    async def count_tokens(
        self, body: dict[str, Any], model: str, *, system: str | None = None, beta: str | None = None
    ) -> int:
        """`POST /v1/messages/count_tokens` with a client's count_tokens body, for the chain entry's `model` and
        with the workflow's `system` prompt before the client's (as a run would send them)."""
        sent = {**body, "model": model}
        if system:
            sent["system"] = with_system(system, body.get("system"))
        async with open_stream(
            self.client,
            self.name,
            self.url + "/count_tokens",
            sent,
            headers=self.headers_for(beta),
            describe=describe_error,
        ) as response:
            raw = await response.read()
        answer = parse_chunk(self.name, raw)
        tokens = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, int):
            raise StreamBroken(f"{self.name}: unexpected count_tokens answer ({raw[:80]!r})")
        return tokens

    def headers_for(self, beta: str | None) -> dict[str, str]:
        """The request headers, with a client's `anthropic-beta` features after any the provider's config sets."""
        if not beta:
            return self.headers
        configured = self.headers.get("anthropic-beta")
        return {**self.headers, "anthropic-beta": f"{configured},{beta}" if configured else beta}

    async def aclose(self) -> None:
        return None


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('type', 'error')})"
    return None
