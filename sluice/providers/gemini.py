"""Google Gemini (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`).

Each SSE `data:` is a `GenerateContentResponse`: text in `candidates[0].content.parts[].text`, `finishReason` on the
last candidate, `usageMetadata` with the token counts. There is no `[DONE]`: a `finishReason` ends the answer.
Errors are `{"error": {"code", "message", "status"}}` (sometimes wrapped in a list).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

from sluice.providers._http import Client, drain, merge, open_stream, parse_chunk, sse_events
from sluice.providers.base import Chunk, ProviderRequest, Usage, system_and_turns
from sluice.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    StreamBroken,
)

_PARAM_NAMES = {"max_tokens": "maxOutputTokens", "top_p": "topP", "top_k": "topK", "stop": "stopSequences"}
_STREAM_ERRORS: dict[str, type[ProviderError]] = {
    "RESOURCE_EXHAUSTED": RateLimited,
    "INVALID_ARGUMENT": InvalidRequest,
    "FAILED_PRECONDITION": InvalidRequest,
    "PERMISSION_DENIED": AuthenticationFailed,
    "UNAUTHENTICATED": AuthenticationFailed,
}


class GeminiProvider:
    kind = "gemini"

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        api_key: str | None = None,
        base_url: str = "https://generativelanguage.googleapis.com",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.headers = {**({"x-goog-api-key": api_key} if api_key else {}), **(headers or {})}

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        system, turns = system_and_turns(request)
        body: dict[str, Any] = {
            "contents": [
                {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]} for m in turns
            ],
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if request.params:
            body["generationConfig"] = {_PARAM_NAMES.get(k, k): v for k, v in request.params.items()}
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        url = f"{self.base_url}/v1beta/models/{quote(request.model, safe='')}:streamGenerateContent"
        async with open_stream(
            self.client,
            self.name,
            url,
            self.body(request),
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
            params={"alt": "sse"},
        ) as response:
            events = sse_events(response)
            async for _, data in events:
                payload = parse_chunk(self.name, data)
                if not isinstance(payload, dict):
                    raise StreamBroken(f"{self.name}: unexpected chunk in the stream ({data[:80]!r})")
                if payload.get("error"):
                    status = (payload["error"] or {}).get("status", "")
                    cls = _STREAM_ERRORS.get(status, ProviderUnavailable)
                    raise cls(f"{self.name} failed mid-stream: {describe_error(payload)}")
                candidate = (payload.get("candidates") or [{}])[0]
                text = "".join(
                    part.get("text", "")
                    for part in (candidate.get("content") or {}).get("parts") or ()
                    if not part.get("thought")
                )
                finish = candidate.get("finishReason")
                metadata = payload.get("usageMetadata")
                usage = (
                    Usage(metadata.get("promptTokenCount") or 0, metadata.get("candidatesTokenCount") or 0)
                    if metadata and finish
                    else None
                )
                if text or finish:
                    yield Chunk(text=text, usage=usage, finish_reason=finish)
                if finish:
                    if finish in ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"):
                        raise InvalidRequest(f"{self.name} stopped the answer: finishReason {finish}")
                    await drain(events)
                    return
        raise StreamBroken(f"{self.name}: the stream ended without a finishReason")

    async def aclose(self) -> None:
        return None


def describe_error(body: Any) -> str | None:
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('status', error.get('code', 'error'))})"
    return None
