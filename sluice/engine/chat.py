"""A chat request as the run loop reads it: taken from the accepted body once, then only typed fields.

The body is in Chat Completions' JSON shape (validated at the API edge, `sluice.api.conversation`), so reading it
cannot fail on anything a client sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.providers.messages import (
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)

# Generation parameters a request may set over its chain entry's `params`.
OVERRIDABLE_PARAMS = ("temperature", "max_tokens", "top_p", "stop", "seed")


@dataclass(frozen=True)
class ChatInput:
    messages: tuple[Message, ...]
    system: str | None = None  # overrides the workflow's system prompt
    params: dict[str, Any] = field(default_factory=dict)  # over the chain entry's params
    schema: dict[str, Any] | None = None  # a per-request schema, compiled when the request was accepted
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    passthrough: dict[str, Any] = field(default_factory=dict)
    native: dict[str, Any] | None = None  # the client's own Messages body (`ProviderRequest.native`)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatInput:
        tools = body.get("tools")
        return cls(
            messages=tuple([message_of(m) for m in body["messages"]]),
            system=body.get("system") or None,
            params={name: body[name] for name in OVERRIDABLE_PARAMS if body.get(name) is not None},
            schema=body.get("schema"),
            tools=tuple([tool_of(t) for t in tools]) if tools else (),
            tool_choice=tool_choice_of(body.get("tool_choice")),
            parallel_tool_calls=body.get("parallel_tool_calls"),
            response_format=response_format_of(body.get("response_format")),
            passthrough=body.get("passthrough") or {},
            native=native_of(body.get("native")),
        )


def message_of(raw: dict[str, Any]) -> Message:
    role = "system" if raw["role"] == "developer" else raw["role"]
    content: Any = raw.get("content")
    if type(content) is str and len(raw) == 2:  # {role, content}: a text-only turn (most requests)
        return Message(role=role, content=content)
    if content is None:
        content = ""
    elif isinstance(content, list):
        content = tuple(part_of(part) for part in content)
    calls = tuple(
        ToolCall(id=call["id"], name=call["function"]["name"], arguments=call["function"].get("arguments") or "")
        for call in raw.get("tool_calls") or ()
    )
    return Message(role=role, content=content, tool_calls=calls, tool_call_id=raw.get("tool_call_id"),
                   name=raw.get("name"))  # fmt: skip


def part_of(raw: dict[str, Any]) -> Part:
    if raw["type"] == "image_url":
        image = raw["image_url"]
        return ImagePart(url=image["url"], detail=image.get("detail"))
    return TextPart(raw.get("text") or "")


def tool_of(raw: dict[str, Any]) -> Tool:
    function = raw["function"]
    return Tool(
        name=function["name"],
        description=function.get("description"),
        parameters=function.get("parameters") or {"type": "object", "properties": {}},
        strict=function.get("strict"),
    )


def tool_choice_of(raw: Any) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return ToolChoice(mode=raw)  # type: ignore[arg-type]  # auto | none | required, checked at the edge
    return ToolChoice(mode="tool", name=raw["function"]["name"])


def response_format_of(raw: Any) -> ResponseFormat | None:
    if not raw or raw.get("type") == "text":
        return None
    if raw["type"] == "json_object":
        return ResponseFormat(type="json_object")
    spec = raw.get("json_schema") or {}
    return ResponseFormat(type="json_schema", schema=spec.get("schema"), name=spec.get("name"))


def native_of(raw: Any) -> dict[str, Any] | None:
    """`native` as `/v1/messages` writes it: a dict holding the client's body (anything else is not one)."""
    return raw if isinstance(raw, dict) and isinstance(raw.get("body"), dict) else None
