"""Anthropic Messages (`POST /v1/messages`, SSE events `message_start`, `content_block_start`/`_delta`/`_stop`,
`message_delta`, `message_stop`, `ping`, and `error` — e.g. `overloaded_error` — inside the stream).

Errors are `{"type": "error", "error": {"type", "message"}}`; HTTP 529 means overloaded. The request and answer
translation, field by field, is in docs/translation.md ("Anthropic Messages"); in short:

- turns are `user`/`assistant` messages of content blocks (`text`, `image`, `tool_use`, `tool_result`); a tool result
  is a `tool_result` block in a user turn, and consecutive turns of one role are merged, as the API needs them to
  alternate (tool results first in their turn, as it also needs);
- the client's tools become `tools`/`tool_choice`; the workflow's schema, in the `tool` dialect, adds the forced
  `respond` tool (`sluice.structured.native`), whose streamed input is the answer's TEXT, while the client's tools'
  `tool_use` blocks become `ToolCallDelta`s numbered in answer order.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

import orjson

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
    Unsupported,
)
from sluice.providers.messages import ImagePart, Message, ResponseFormat, TextPart, Tool, ToolCall, ToolCallDelta

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
# `stop_reason` → finish_reason in OpenAI's words (an unknown one is "stop").
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})  # what the API takes inline
JSON_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no Markdown code fence, no text before or after it."
)


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
        """The Messages request body; `Unsupported` (before anything is sent) for what the API cannot take."""
        system, _ = system_and_turns(request)
        if request.response_format is not None and request.schema is None:  # a workflow's schema wins
            system = "\n\n".join(part for part in (system, json_instruction(request.response_format)) if part)
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": self.max_tokens,
            "messages": turns(request.messages),
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
        body = self.body(request)
        answer = AnswerReader(structured_tool(request.extra))
        async with open_stream(
            self.client,
            self.name,
            self.url,
            body,
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

    async def aclose(self) -> None:
        return None


# The request ---------------------------------------------------------------------------------------------------


def turns(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The conversation as alternating user/assistant turns of content blocks (system messages left out: they are
    the `system` field). A turn of one text block is sent as a string, as the API also takes it."""
    out: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = content_blocks(message, position)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:
        blocks = turn["content"]
        if turn["role"] == "user":  # the API wants a turn's tool results before anything else in it
            blocks.sort(key=lambda block: block["type"] != "tool_result")
        if not blocks:
            turn["content"] = ""
        elif len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return out


def content_blocks(message: Message, position: int) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}]
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:  # the API refuses empty text blocks
                blocks.append({"type": "text", "text": part.text})
        elif message.role == "assistant":
            raise Unsupported(f"messages[{position}]: Anthropic takes images in user messages only")
        else:
            blocks.append(image_block(part, position))
    blocks += [tool_use_block(call, position) for call in message.tool_calls]
    return blocks


def image_block(part: ImagePart, position: int) -> dict[str, Any]:
    inline = part.inline
    if inline is not None:
        media_type, data = inline
        if media_type not in IMAGE_TYPES:
            raise Unsupported(
                f"messages[{position}]: Anthropic takes {', '.join(sorted(IMAGE_TYPES))} images, not {media_type}"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if part.url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    raise Unsupported(f"messages[{position}]: an image must be an https:// URL or a base64 data: URL")


def tool_use_block(call: ToolCall, position: int) -> dict[str, Any]:
    """An earlier call of the model, whose arguments Anthropic takes as an object only (`input`)."""
    try:
        arguments = orjson.loads(call.arguments) if call.arguments.strip() else {}
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise Unsupported(
            f"messages[{position}]: the arguments of tool call {call.id!r} are not a JSON object, "
            "and Anthropic takes a call's input as an object only"
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def tool_spec(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["input_schema"] = tool.parameters
    if tool.strict:
        spec["strict"] = True
    return spec


def tool_choice(request: ProviderRequest, forced: Any) -> dict[str, Any] | None:
    """`tool_choice` for a request that offers tools. With the structured-output tool forced (`forced`) and tools
    of the client's own, the model must still be able to call those: `any` lets it call one of them or answer with
    the structured tool (a client's `none` keeps the structured tool forced; a named tool is forced instead)."""
    choice = request.tool_choice
    mode = choice.mode if choice is not None else None
    spec: dict[str, Any] | None
    if isinstance(forced, dict) and (not request.tools or mode == "none"):
        spec = dict(forced)
    elif mode == "tool" and choice is not None:
        spec = {"type": "tool", "name": choice.name}
    elif isinstance(forced, dict) or mode == "required":
        spec = {"type": "any"}
    elif mode is not None:
        spec = {"type": mode}  # auto | none
    else:
        spec = None
    if request.parallel_tool_calls is False and (spec is None or spec["type"] != "none"):
        spec = {**(spec or {"type": "auto"}), "disable_parallel_tool_use": True}
    return spec


def structured_tool(extra: dict[str, Any]) -> str | None:
    """The name of the forced structured-output tool, if the request asks for one."""
    choice = extra.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return choice["name"]
    return None


def params(values: dict[str, Any]) -> dict[str, Any]:
    """The generation parameters by Anthropic's names: `stop` → `stop_sequences` (a list); `seed` has no
    equivalent and is left out; the others (temperature, top_p, max_tokens, a chain entry's own) as they are."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "seed":
            continue
        if name == "stop":
            out["stop_sequences"] = [value] if isinstance(value, str) else list(value)
        else:
            out[name] = value
    return out


def json_instruction(response_format: ResponseFormat) -> str:
    """Anthropic has no JSON mode: the client's is asked for in the system prompt."""
    if response_format.type == "json_schema" and response_format.schema is not None:
        return f"{JSON_INSTRUCTION} It must match this JSON Schema:\n{orjson.dumps(response_format.schema).decode()}"
    return JSON_INSTRUCTION


# The answer ----------------------------------------------------------------------------------------------------


class AnswerReader:
    """Reads one streamed answer, event by event, into `Chunk`s (no I/O: `stream` feeds it).

    Content blocks are told apart by their `index`: `text` blocks give text; a `tool_use` block of the structured
    tool gives its input JSON as text; any other `tool_use` block is the next tool call (0, 1, … in answer order),
    its `input_json_delta`s that call's arguments. Thinking and other blocks are passed over."""

    def __init__(self, structured: str | None = None) -> None:
        self.structured = structured
        self.blocks: dict[int, int | None] = {}  # tool_use block index → call index (None: the structured tool)
        self.filled: set[int] = set()  # calls whose arguments have begun
        self.calls = 0
        self.input_tokens = self.output_tokens = 0
        self.stop_reason: str | None = None

    def read(self, kind: str, payload: dict[str, Any]) -> Chunk | None:
        index = payload.get("index", 0)
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = delta.get("text") or ""
                return Chunk(text=text) if text and self.structured is None else None
            if delta.get("type") == "input_json_delta" and index in self.blocks:
                return self._arguments(self.blocks[index], delta.get("partial_json") or "")
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                return self._call(index, block)
        elif kind == "content_block_stop":
            call = self.blocks.get(index)
            if call is not None and call not in self.filled:  # a call without arguments: OpenAI's is "{}"
                self.filled.add(call)
                return Chunk(tool_calls=(ToolCallDelta(call, arguments="{}"),))
        elif kind == "message_start":
            usage = (payload.get("message") or {}).get("usage") or {}
            self.input_tokens = usage.get("input_tokens") or 0
            self.output_tokens = usage.get("output_tokens") or 0
        elif kind == "message_delta":
            self.output_tokens = (payload.get("usage") or {}).get("output_tokens") or self.output_tokens
            self.stop_reason = (payload.get("delta") or {}).get("stop_reason") or self.stop_reason
        elif kind == "message_stop":
            return Chunk(usage=Usage(self.input_tokens, self.output_tokens), finish_reason=self.finish_reason)
        return None

    @property
    def finish_reason(self) -> str:
        if self.stop_reason == "tool_use" and not self.calls:
            return "stop"  # only the structured tool was used: its input is the answer's text
        return FINISH_REASONS.get(self.stop_reason or "end_turn", "stop")

    def _call(self, index: int, block: dict[str, Any]) -> Chunk | None:
        start = block.get("input")  # `{}` when streamed; a proxy may send the whole input here
        if self.structured is not None and block.get("name") == self.structured:
            self.blocks[index] = None
            # The structured tool's input is the answer's text: a whole input sent here must not be lost.
            return Chunk(text=orjson.dumps(start).decode()) if start else None
        call = self.blocks[index] = self.calls
        self.calls += 1
        arguments = orjson.dumps(start).decode() if start else ""
        if arguments:
            self.filled.add(call)
        return Chunk(tool_calls=(ToolCallDelta(call, id=block.get("id"), name=block.get("name"), arguments=arguments),))

    def _arguments(self, call: int | None, partial: str) -> Chunk | None:
        if not partial:
            return None
        if call is None:
            return Chunk(text=partial)
        self.filled.add(call)
        return Chunk(tool_calls=(ToolCallDelta(call, arguments=partial),))


def describe_error(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return f"{error.get('message', '')} ({error.get('type', 'error')})"
    return None
