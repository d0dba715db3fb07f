"""Ollama (`POST /api/chat`, streamed as NDJSON: one JSON object per line, the last with `"done": true`, its
`done_reason` and the counts `prompt_eval_count` / `eval_count`; embeddings by `POST /api/embed`).

Tool calls come whole, in a line's `message.tool_calls` (`{"function": {"index", "name", "arguments": object}}`).
Errors are `{"error": "…"}`, also as a line inside the stream. docs/translation.md has the field-by-field table.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import orjson

from sluice.providers._calls import WholeCalls
from sluice.providers._http import Client, bearer, drain, merge, ndjson_lines, open_stream, parse_chunk
from sluice.providers.base import Chunk, EmbeddingRequest, Embeddings, Message, ProviderRequest, Usage
from sluice.providers.errors import ProviderUnavailable, StreamBroken, Unsupported

# Portable parameters → `options` (Ollama's Modelfile names); others a chain entry sets go as written.
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
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/api/chat"
        self.headers = {**bearer(api_key), **(headers or {})}  # a key only matters behind an auth proxy
        self.keep_alive = keep_alive

    def body(self, request: ProviderRequest) -> dict[str, Any]:
        """The `/api/chat` request; raises `Unsupported` for what Ollama cannot be sent (before any I/O)."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += chat_messages(request.messages)
        if request.prefill is not None:  # a last assistant message: Ollama continues it (`sluice.engine.continuation`)
            messages.append({"role": "assistant", "content": request.prefill})
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": True}
        choice = request.tool_choice.mode if request.tool_choice else "auto"
        if request.tools and choice in ("required", "tool"):
            # Ollama has no way to make the model call a tool: a provider that has one may take the request.
            raise Unsupported(f"Ollama cannot be made to call a tool (tool_choice {choice!r})")
        if request.tools and choice == "auto":  # "none": the tools are not offered
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        **({"description": tool.description} if tool.description else {}),
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        if request.response_format is not None:
            schema = request.response_format.schema
            body["format"] = schema if request.response_format.type == "json_schema" and schema else "json"
        if request.params:
            body["options"] = options(request.params)
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return merge(body, request.extra)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[Chunk, None]:
        body = self.body(request)
        reader = AnswerReader(self.name)
        async with open_stream(
            self.client,
            self.name,
            self.url,
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            lines = ndjson_lines(response)
            async for line in lines:
                for chunk in reader.read(parse_chunk(self.name, line)):
                    yield chunk
                if reader.finished:
                    await drain(lines)
                    return
        raise StreamBroken(f"{self.name}: the stream ended before a line with done: true")

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        body: dict[str, Any] = {"model": request.model, "input": list(request.inputs)}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        async with open_stream(
            self.client,
            self.name,
            self.base_url + "/api/embed",
            body,
            headers=self.headers,
            describe=describe_error,
            connect_timeout=request.connect_timeout,
        ) as response:
            raw = await response.read()
        answer = parse_chunk(self.name, raw)
        found = answer.get("embeddings") if isinstance(answer, dict) else None
        if not isinstance(found, list) or len(found) != len(request.inputs):
            raise StreamBroken(f"{self.name}: unexpected embeddings answer ({raw[:80]!r})")
        return Embeddings(
            vectors=tuple(tuple(vector or ()) for vector in found),
            usage=Usage(input_tokens=answer.get("prompt_eval_count") or 0),
        )

    async def aclose(self) -> None:
        return None


class AnswerReader:
    """Turns the stream's lines into chunks, numbering the calls across lines."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.calls = WholeCalls()
        self.finished = False

    def read(self, payload: Any) -> Iterator[Chunk]:
        if not isinstance(payload, dict):
            raise StreamBroken(f"{self.provider}: unexpected line in the stream ({str(payload)[:80]!r})")
        if payload.get("error"):
            raise ProviderUnavailable(f"{self.provider} failed mid-stream: {payload['error']}")
        message = payload.get("message") or {}
        text = message.get("content") or ""
        calls = []
        for call in message.get("tool_calls") or ():
            function = (call or {}).get("function") or {}
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                arguments = orjson.dumps(arguments or {}).decode()
            calls.append(self.calls.delta(call.get("id"), function.get("name"), arguments))
        done = bool(payload.get("done"))
        if text and (calls or not done):
            yield Chunk(text=text)
            text = ""
        if calls:
            yield Chunk(tool_calls=tuple(calls))
        if done:
            self.finished = True
            reason = (
                "tool_calls" if self.calls.count else "length" if payload.get("done_reason") == "length" else "stop"
            )
            usage = Usage(payload.get("prompt_eval_count") or 0, payload.get("eval_count") or 0)
            yield Chunk(text=text, usage=usage, finish_reason=reason)


def chat_messages(turns: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    called: dict[str, str] = {}  # call id → function name, from the assistant turns so far
    for index, message in enumerate(turns):
        entry: dict[str, Any] = {"role": message.role, "content": message.text}
        images = []
        for image in message.images:
            inline = image.inline
            if inline is None:
                raise Unsupported(f"messages[{index}]: Ollama takes images inline (a data: URL), not by link")
            images.append(inline[1])
        if images:
            entry["images"] = images
        if message.tool_calls:
            entry["tool_calls"] = []
            for number, call in enumerate(message.tool_calls):
                called[call.id] = call.name
                function = {"index": number, "name": call.name, "arguments": call_arguments(call.arguments, call.name)}
                entry["tool_calls"].append({"type": "function", "function": function})
        if message.role == "tool":
            name = message.name or called.get(message.tool_call_id or "")
            if name:
                entry["tool_name"] = name
        out.append(entry)
    return out


def call_arguments(arguments: str, name: str) -> dict[str, Any]:
    """`arguments` of a replayed call: Ollama takes an object, not the text the model wrote."""
    try:
        parsed = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise Unsupported(f"the arguments of the call to {name!r} are not a JSON object, which Ollama requires")
    return parsed


def options(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if key == "stop" and isinstance(value, str):
            value = [value]  # Ollama takes a list only
        out[_OPTION_NAMES.get(key, key)] = value
    return out


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return None
