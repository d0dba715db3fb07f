"""OpenAI Chat Completions (`POST /chat/completions`, streamed as SSE `chat.completion.chunk`s ending in `[DONE]`) and
embeddings (`POST /embeddings`).

The canonical conversation is Chat Completions' own model, so the request is a faithful copy (docs/translation.md,
"OpenAI and OpenAI-compatible servers"): content parts, the assistant's `tool_calls`, `tool` messages, `tools`,
`tool_choice`, `parallel_tool_calls`, `response_format`, and every field Sluice has no model for (`passthrough`:
`logprobs`, `user`, `service_tier`…) as the client sent it. Streamed tool calls are read as OpenAI streams them:
`delta.tool_calls[i]` whose first piece has the call's `id` and `function.name`, later pieces more of
`function.arguments`. Usage comes in a last chunk with empty `choices` when `stream_options.include_usage` is set,
with `prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens` where the model has them.
A compatible server's reasoning text (`delta.reasoning_content` or `delta.reasoning`) becomes `ThinkingDelta`s.
Errors are `{"error": {"message", "type", "param", "code"}}`, also inside the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

from sluice.providers._http import Client, bearer, drain, merge, open_stream, parse_chunk, sse_batches
from sluice.providers.base import Chunk, EmbeddingRequest, Embeddings, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, ProviderUnavailable, StreamBroken, Unsupported
from sluice.providers.messages import Message, Part, TextPart, ThinkingDelta, Tool, ToolCallDelta

_PARAM_NAMES = {"max_tokens": "max_completion_tokens"}


class OpenAIProvider:
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    param_names: dict[str, str] = _PARAM_NAMES
    # What the server's models take; an OpenAI-compatible server may say otherwise (`images: false`), and a request
    # that needs it then fails over (`Unsupported`) instead of being sent.
    takes_images = True
    takes_tools = True
    takes_prefill = False  # OpenAI does not continue a last assistant message; a compatible server may
    vllm_prefill = False

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
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.headers = {**bearer(api_key), **(headers or {})}
        self.stream_usage = stream_usage
        # The events of one network read as one chunk: a gateway behind its provider (a fast server, or under load)
        # pays the per-event costs once per read. Off: one chunk, so one channel event, per provider event.
        self.merge_reads = merge_reads

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The Chat Completions body; `Unsupported` (before anything is sent) for what this server cannot take."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [self._message(m, position) for position, m in enumerate(request.messages)]
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream}
        if request.prefill is not None:
            if not self.takes_prefill:
                raise Unsupported(f"{self.name} does not continue a prefilled answer")
            messages.append({"role": "assistant", "content": request.prefill})
            if self.vllm_prefill:
                body.update(continue_final_message=True, add_generation_prompt=False)
        if self.stream_usage and request.stream:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            if not self.takes_tools:
                raise Unsupported(f"{self.name} is configured without tool calling (tools: false)")
            body["tools"] = [tool_spec(tool) for tool in request.tools]
            if request.parallel_tool_calls is not None:  # OpenAI refuses it without tools
                body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
            )
        if request.response_format is not None:
            rf = request.response_format
            body["response_format"] = (
                {"type": "json_schema", "json_schema": {"name": rf.name or "response", "schema": rf.schema}}
                if rf.type == "json_schema" and rf.schema is not None
                else {"type": "json_object"}
            )
        body.update({self.param_names.get(k, k): v for k, v in request.params.items()})
        body.update(request.passthrough)  # fields Sluice has no model for, as the client sent them
        return merge(body, request.extra)

    def _message(self, message: Message, position: int) -> dict[str, Any]:
        out: dict[str, Any] = {"role": message.role}
        if message.role == "tool":
            out["tool_call_id"] = message.tool_call_id
        if isinstance(message.content, str):
            out["content"] = message.content
        else:
            out["content"] = [self._part(part, position) for part in message.content]
        if message.tool_calls:
            out["content"] = out["content"] or None  # a turn that only called tools has no content
            out["tool_calls"] = [call.to_openai() for call in message.tool_calls]
        return out

    def _part(self, part: Part, position: int) -> dict[str, Any]:
        if isinstance(part, TextPart):
            return {"type": "text", "text": part.text}
        if not self.takes_images:
            raise Unsupported(f"messages[{position}]: {self.name} is configured without image input (images: false)")
        image: dict[str, Any] = {"url": part.url}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        body = self.body(request)
        async with open_stream(
            self.client,
            self.name,
            self.url,
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            if not request.stream:
                yield self._completion(await response.read())  # a cut body fails as a cut stream does
                return
            calls_seen: set[int] = set()
            batches = sse_batches(response)
            async for batch in batches:
                # The events of one read become one Chunk (see `sse_batches`) unless `merge_reads` is off.
                for group in [batch] if self.merge_reads else [[event] for event in batch]:
                    texts, calls, finish, usage, done = list[str](), list[ToolCallDelta](), None, None, False
                    thoughts: list[str] = []
                    for _, data in group:
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            text, event_calls, event_finish, event_usage, thought = self._event(data, calls_seen)
                        except ProviderError:
                            if texts or calls or thoughts:  # what was read before a failed event is handed over first
                                yield Chunk(text="".join(texts), tool_calls=tuple(calls), thinking=_thinking(thoughts))
                            raise
                        if thought:
                            thoughts.append(thought)
                        if text:
                            if calls:  # text after a call piece in one read: keep the order
                                yield Chunk(text="".join(texts), tool_calls=tuple(calls))
                                texts, calls = [], []
                            texts.append(text)
                        if event_calls:
                            calls += event_calls
                        finish = event_finish or finish
                        usage = event_usage or usage
                    if texts or calls or finish or usage or thoughts:
                        yield Chunk(
                            text="".join(texts),
                            finish_reason=finish,
                            usage=usage_of(usage) if usage else None,
                            tool_calls=tuple(calls),
                            thinking=_thinking(thoughts) if thoughts else (),  # no call per ordinary chunk
                        )
                    if done:
                        await drain(batches)
                        return
        raise StreamBroken(f"{self.name}: the stream ended without [DONE]")

    def _completion(self, raw: bytes) -> Chunk:
        """The one chunk of a non-streamed `chat.completion`: its text, then its calls."""
        body = parse_chunk(self.name, raw)
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise StreamBroken(f"{self.name}: unexpected answer ({raw[:80]!r})")
        if body.get("error"):
            raise ProviderUnavailable(f"{self.name} failed: {describe_error(body)}")
        choice = body["choices"][0] if body["choices"] else {}
        message = choice.get("message") or {}
        calls = tuple(
            ToolCallDelta(
                index,
                id=call.get("id"),
                name=(call.get("function") or {}).get("name"),
                arguments=(call.get("function") or {}).get("arguments") or "",
            )
            for index, call in enumerate(message.get("tool_calls") or ())
        )
        usage = body.get("usage")
        return Chunk(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason"),
            usage=usage_of(usage) if usage else None,
            tool_calls=calls,
            thinking=_thinking([reasoning_of(message)]),
        )

    def _event(
        self, data: str, calls_seen: set[int]
    ) -> tuple[str | None, list[ToolCallDelta] | None, str | None, dict[str, Any] | None, str]:
        """(text, call pieces, finish reason, usage, reasoning) of one `chat.completion.chunk`; a malformed or error
        event raises."""
        chunk = parse_chunk(self.name, data)
        if not isinstance(chunk, dict):
            raise StreamBroken(f"{self.name}: unexpected chunk in the stream ({data[:80]!r})")
        if chunk.get("error"):
            raise ProviderUnavailable(f"{self.name} failed mid-stream: {describe_error(chunk)}")
        choices = chunk.get("choices")
        if not choices:
            return None, None, None, chunk.get("usage"), ""
        choice = choices[0]
        delta = choice.get("delta") or {}
        raw_calls = delta.get("tool_calls")
        calls = call_pieces(raw_calls, calls_seen) if raw_calls else None
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")  # `reasoning_of`, inline: per event
        thought = reasoning if isinstance(reasoning, str) else ""
        return delta.get("content"), calls, choice.get("finish_reason"), chunk.get("usage"), thought

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """`POST /embeddings`, asked for floats (the API edge encodes base64 itself when its client asks)."""
        body: dict[str, Any] = {"model": request.model, "input": list(request.inputs), "encoding_format": "float"}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        async with open_stream(
            self.client,
            self.name,
            self.base_url + "/embeddings",
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            raw = await response.read()
        answer = parse_chunk(self.name, raw)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(request.inputs):
            raise StreamBroken(f"{self.name}: unexpected embeddings answer ({raw[:80]!r})")
        ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
        try:
            vectors = tuple(tuple(float(v) for v in item["embedding"]) for item in ordered)
        except (KeyError, TypeError, ValueError):
            raise StreamBroken(f"{self.name}: an embedding that is not a list of numbers ({raw[:80]!r})") from None
        return Embeddings(vectors=vectors, usage=usage_of(answer.get("usage") or {}))

    async def aclose(self) -> None:
        return None  # the shared client is closed by the provider pool


def tool_spec(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def call_pieces(raw: Iterable[Any], seen: set[int]) -> list[ToolCallDelta]:
    """`delta.tool_calls` as `ToolCallDelta`s. Some compatible servers repeat a call's `id` and name on every piece;
    they are kept on its first piece only, as OpenAI sends them (clients concatenate what they are given)."""
    out = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        index = item.get("index", position)
        function = item.get("function") or {}
        arguments = function.get("arguments") or ""
        if index in seen:
            out.append(ToolCallDelta(index, arguments=arguments))
        else:
            seen.add(index)
            out.append(ToolCallDelta(index, id=item.get("id"), name=function.get("name"), arguments=arguments))
    return out


def reasoning_of(message: dict[str, Any]) -> str:
    """The reasoning text some compatible servers stream beside the answer (`reasoning_content`: DeepSeek, vLLM,
    llama.cpp; `reasoning`: OpenRouter, Ollama's OpenAI API). OpenAI itself sends none."""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def _thinking(pieces: list[str]) -> tuple[ThinkingDelta, ...]:
    """Reasoning pieces as the answer's one thinking block (these servers sign nothing)."""
    text = "".join(pieces)
    return (ThinkingDelta(0, text=text),) if text else ()


def usage_of(usage: dict[str, Any]) -> Usage:
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=usage.get("prompt_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        cached_input_tokens=prompt.get("cached_tokens") or 0,
        reasoning_tokens=completion.get("reasoning_tokens") or 0,
        cache_write_tokens=prompt.get("cache_write_tokens") or 0,  # OpenRouter's, for models that bill writes
    )


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        kind = error.get("code") or error.get("type")
        return f"{error.get('message', '')} ({kind})" if kind else str(error.get("message", ""))
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # some compatible servers
        return body["error"]
    return None
