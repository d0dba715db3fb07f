"""OpenAI Chat Completions (`POST /chat/completions`, streamed as SSE `chat.completion.chunk`s ending in `[DONE]`).

Usage comes in a last chunk with empty `choices` when `stream_options.include_usage` is set. Errors are
`{"error": {"message", "type", "param", "code"}}`, also inside the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from sluice.providers._http import Client, bearer, drain, merge, open_stream, parse_chunk, sse_batches
from sluice.providers.base import Chunk, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, ProviderUnavailable, StreamBroken

_PARAM_NAMES = {"max_tokens": "max_completion_tokens"}


class OpenAIProvider:
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    param_names: dict[str, str] = _PARAM_NAMES

    def __init__(
        self,
        name: str,
        *,
        client: Client,
        api_key: str | None = None,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        stream_usage: bool = True,
        merge_reads: bool = True,
    ) -> None:
        self.name = name
        self.client = client
        self.url = (base_url or self.default_base_url).rstrip("/") + "/chat/completions"
        self.headers = {**bearer(api_key), **(headers or {})}
        self.stream_usage = stream_usage
        # The events of one network read as one chunk: a gateway behind its provider (a fast server, or under load)
        # pays the per-event costs once per read. Off: one chunk, so one channel event, per provider event.
        self.merge_reads = merge_reads

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream}
        if self.stream_usage and request.stream:
            body["stream_options"] = {"include_usage": True}
        body.update({self.param_names.get(k, k): v for k, v in request.params.items()})
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
            if not request.stream:
                yield self._completion(await response.read())  # a cut body fails as a cut stream does
                return
            batches = sse_batches(response)
            async for batch in batches:
                # The events of one read become one Chunk (see `sse_batches`) unless `merge_reads` is off.
                for group in [batch] if self.merge_reads else [[event] for event in batch]:
                    texts, finish, usage, done = list[str](), None, None, False
                    for _, data in group:
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            text, event_finish, event_usage = self._event(data)
                        except ProviderError:
                            if texts:  # text read before a failed event is handed over first: the run retracts it
                                yield Chunk(text="".join(texts))
                            raise
                        if text:
                            texts.append(text)
                        finish = event_finish or finish
                        usage = event_usage or usage
                    if texts or finish or usage:
                        yield Chunk(
                            text="".join(texts),
                            finish_reason=finish,
                            usage=Usage(
                                input_tokens=usage.get("prompt_tokens") or 0,
                                output_tokens=usage.get("completion_tokens") or 0,
                            )
                            if usage
                            else None,
                        )
                    if done:
                        await drain(batches)
                        return
        raise StreamBroken(f"{self.name}: the stream ended without [DONE]")

    def _completion(self, raw: bytes) -> Chunk:
        """The one chunk of a non-streamed `chat.completion`."""
        body = parse_chunk(self.name, raw)
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise StreamBroken(f"{self.name}: unexpected answer ({raw[:80]!r})")
        if body.get("error"):
            raise ProviderUnavailable(f"{self.name} failed: {describe_error(body)}")
        choice = body["choices"][0] if body["choices"] else {}
        usage = body.get("usage") or {}
        return Chunk(
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason"),
            usage=Usage(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0)
            if usage
            else None,
        )

    def _event(self, data: str) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """(text, finish reason, usage) of one `chat.completion.chunk`; a malformed or error event raises."""
        chunk = parse_chunk(self.name, data)
        if not isinstance(chunk, dict):
            raise StreamBroken(f"{self.name}: unexpected chunk in the stream ({data[:80]!r})")
        if chunk.get("error"):
            raise ProviderUnavailable(f"{self.name} failed mid-stream: {describe_error(chunk)}")
        choices = chunk.get("choices") or []
        if not choices:
            return None, None, chunk.get("usage")
        return (choices[0].get("delta") or {}).get("content"), choices[0].get("finish_reason"), chunk.get("usage")

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
