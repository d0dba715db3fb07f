"""The Anthropic Messages request body, from the canonical request or from the client's own body.

The canonical translation, field by field, is in docs/translation.md ("Anthropic Messages"): turns of content blocks
(tool results first in their user turn, consecutive turns of one role merged), tools, tool choice, parameters by
Anthropic's names, the client's JSON mode as an instruction.

A request that came in through `/v1/messages` carries the client's body (`ProviderRequest.native`), and that is what
is sent (`native_body`): system and tool blocks with their `cache_control`, `thinking`, `metadata`, `top_k` and any
field Sluice has no model for, as they came. Only what the gateway decides is put over it: the chain entry's
`model`, `stream: true`, the workflow's system prompt before the client's, the entry's params where the client set
none, the structured-output tool or format, and the turns of a re-ask.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from sluice.providers._http import merge
from sluice.providers.base import ProviderRequest
from sluice.providers.errors import Unsupported
from sluice.providers.messages import ImagePart, Message, ResponseFormat, TextPart, Tool, ToolCall

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})  # what the API takes inline
JSON_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no Markdown code fence, no text before or after it."
)


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


def tool_choice(request: ProviderRequest, forced: Any, client_tools: bool | None = None) -> dict[str, Any] | None:
    """`tool_choice` for a request that offers tools. With the structured-output tool forced (`forced`) and tools
    of the client's own (`client_tools`, by default whether the request has any), the model must still be able to
    call those: `any` lets it call one of them or answer with the structured tool (a client's `none` keeps the
    structured tool forced; a named tool is forced instead)."""
    choice = request.tool_choice
    mode = choice.mode if choice is not None else None
    has_tools = bool(request.tools) if client_tools is None else client_tools
    spec: dict[str, Any] | None
    if isinstance(forced, dict) and (not has_tools or mode == "none"):
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


# The client's own body ------------------------------------------------------------------------------------------


def native_body(request: ProviderRequest, native: dict[str, Any], provider: str) -> dict[str, Any]:
    """The client's Messages body with only the gateway's own decisions put over it (the module doc says which)."""
    body = dict(native["body"])
    body["model"] = request.model
    body["stream"] = True
    if request.system:  # the workflow's; the client's own system prompt is in the body
        body["system"] = with_system(request.system, body.get("system"))
    for name, value in params(request.params).items():
        body.setdefault(name, value)  # the client's value wins over the chain entry's
    messages = signed_only(body.get("messages") or [])
    if request.gateway_turns:  # a re-ask's or a continuation's turns, added to the canonical messages
        messages = [*messages, *turns(request.messages[-request.gateway_turns :])]
    if request.prefill is not None:
        messages = with_prefill(messages, request.prefill)
    body["messages"] = messages
    extra = dict(request.extra)
    forced = extra.pop("tool_choice", None)
    structured = [tool for tool in extra.pop("tools", ()) if isinstance(tool, dict)]
    if structured:
        tools = [tool for tool in body.get("tools") or () if isinstance(tool, dict)]
        clash = {tool.get("name") for tool in structured} & {tool.get("name") for tool in tools}
        if clash:
            raise Unsupported(
                f"{provider}: a tool of the request is named {', '.join(sorted(map(str, clash)))}, "
                "the name structured output uses on Anthropic"
            )
        body["tools"] = tools + structured
        choice = tool_choice(request, forced, client_tools=bool(tools))
        if choice is not None:
            body["tool_choice"] = choice
    return merge(body, extra)


def with_prefill(messages: list[Any], text: str) -> list[Any]:
    """The turns with `text` as the start of the answer: a last assistant turn, which the model continues (appended
    to the client's own last assistant turn when its body ended with one: its own prefill, which `text` goes on)."""
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        content = last.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        return [*messages[:-1], {**last, "content": [*blocks, {"type": "text", "text": text}]}]
    return [*messages, {"role": "assistant", "content": text}]


def with_system(first: str, system: Any) -> str | list[Any]:
    """`first` before the client's system prompt, kept in its shape: text, or blocks (whose `cache_control`
    breakpoints stay where they were)."""
    if isinstance(system, list):
        return [{"type": "text", "text": first}, *system]
    return f"{first}\n\n{system}" if system else first


def signed_only(messages: list[Any]) -> list[Any]:
    """The messages without thinking blocks that have no signature: the reasoning of another provider, which
    Sluice gave the client as thinking, and which Anthropic would refuse (it checks every signature)."""
    out = messages
    for position, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(_unsigned(block) for block in content):
            continue
        if out is messages:
            out = list(messages)
        out[position] = {**message, "content": [block for block in content if not _unsigned(block)]}
    return out


def _unsigned(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")
