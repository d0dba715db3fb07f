"""The Anthropic Messages request body (`POST /v1/messages`, `/v1/messages/count_tokens`): validated here, then
read into a Sluice request body in the canonical Chat Completions shape (`to_sluice`).

Validation names the field at fault (`messages[2].content[1].source.data: …`, a 400 in Anthropic's error shape) and
checks what the canonical conversation relies on: block types per role, a `tool_result` answering a `tool_use` of
the assistant turn before it, base64 image data. Blocks and tools Sluice has no canonical form for (`document`,
`search_result`, server tools…) are accepted: they reach an Anthropic provider in the client's own body, and are
listed as `native.untranslated` so a provider of another type fails over instead of answering without them.

docs/translation.md ("The Messages endpoint") has the field-by-field table.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from sluice.api.conversation import MAX_IMAGE_URL, MAX_TEXT
from sluice.providers.messages import valid_base64

API = "anthropic.messages"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_MESSAGES = 10_000  # a long agent session; the body limit applies first
Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Block(BaseModel):
    model_config = ConfigDict(extra="allow")  # `cache_control`, `citations`…: kept in the client's own body


class TextBlock(_Block):
    type: Literal["text"]
    text: Text


class Base64Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(max_length=MAX_IMAGE_URL)

    @field_validator("data")
    @classmethod
    def _base64(cls, data: str) -> str:
        if not valid_base64(data):
            raise ValueError("not valid base64")
        return data


class URLSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["url"]
    url: str = Field(max_length=MAX_IMAGE_URL, pattern=r"^https?://")


class FileSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["file"]
    file_id: str = Field(min_length=1)


def _tagged(kinds: tuple[str, ...], other: str | None = None) -> Discriminator:
    """Tagged by `type` (the tag bracketed, so error messages leave it out of the path); an unlisted type is
    `other`'s, or an error naming the types there are."""

    def tag(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        if kind in kinds:
            return f"[{kind}]"
        return f"[{other}]" if other is not None and isinstance(kind, str) else None

    listed = ", ".join(repr(kind) for kind in kinds)
    return Discriminator(tag, custom_error_type="invalid_type", custom_error_message=f"expected a type of {listed}")


ImageSource = Annotated[
    Annotated[Base64Source, Tag("[base64]")]
    | Annotated[URLSource, Tag("[url]")]
    | Annotated[FileSource, Tag("[file]")],
    _tagged(("base64", "url", "file")),
]


class ImageBlock(_Block):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    input: dict[str, Any]


class OtherBlock(_Block):
    """A block type Sluice has no canonical form for (`document`, `search_result`, `server_tool_use`…)."""

    type: str


ResultPart = Annotated[
    Annotated[TextBlock, Tag("[text]")] | Annotated[ImageBlock, Tag("[image]")] | Annotated[OtherBlock, Tag("[*]")],
    _tagged(("text", "image"), "*"),
]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str = Field(min_length=1, max_length=200)
    content: Text | Annotated[list[ResultPart], Field(max_length=1000)] | None = None
    is_error: bool | None = None


class ThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: str


KINDS = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")
Block = Annotated[
    Annotated[TextBlock, Tag("[text]")]
    | Annotated[ImageBlock, Tag("[image]")]
    | Annotated[ToolUseBlock, Tag("[tool_use]")]
    | Annotated[ToolResultBlock, Tag("[tool_result]")]
    | Annotated[ThinkingBlock, Tag("[thinking]")]
    | Annotated[RedactedThinkingBlock, Tag("[redacted_thinking]")]
    | Annotated[OtherBlock, Tag("[*]")],
    _tagged(KINDS, "*"),
]
_ASSISTANT_ONLY = (ToolUseBlock, ThinkingBlock, RedactedThinkingBlock)


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: Text | Annotated[list[Block], Field(max_length=1000)]


class CustomTool(_Block):
    type: Literal["custom"] | None = None
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=100_000)
    input_schema: dict[str, Any]


class ServerTool(_Block):
    """A tool Anthropic runs itself (`web_search_…`, `bash_…`, `text_editor_…`, `computer_…`)."""

    type: str
    name: str | None = None


def _tool_kind(tool: Any) -> str:
    kind = tool.get("type") if isinstance(tool, dict) else getattr(tool, "type", None)
    return "[custom]" if kind in (None, "custom") else "[server]"


Tool = Annotated[
    Annotated[CustomTool, Tag("[custom]")] | Annotated[ServerTool, Tag("[server]")], Discriminator(_tool_kind)
]


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None

    @model_validator(mode="after")
    def _named(self) -> ToolChoice:
        if (self.type == "tool") != (self.name is not None):
            raise ValueError("name is given with type 'tool', and only then")
        return self


class CountTokensRequest(BaseModel):
    """The body of `/v1/messages/count_tokens`: the conversation part of a Messages body."""

    model_config = ConfigDict(extra="allow")  # kept in the client's own body (`thinking` settings, `mcp_servers`…)

    model: str = Field(min_length=1, max_length=300, description="A workflow name, or `provider/model`.")
    messages: list[MessageParam] = Field(min_length=1, max_length=MAX_MESSAGES)
    system: Text | list[TextBlock] | None = None
    tools: list[Tool] | None = Field(default=None, max_length=1000)
    tool_choice: ToolChoice | None = None
    thinking: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _blocks_fit_their_turns(self) -> CountTokensRequest:
        called: set[str] = set()
        for i, message in enumerate(self.messages):
            blocks = message.content if isinstance(message.content, list) else []
            for j, block in enumerate(blocks):
                where = f"messages.{i}.content.{j}"
                if message.role == "user" and isinstance(block, _ASSISTANT_ONLY):
                    raise ValueError(f"{where}: a {block.type} block goes in an assistant message")
                if message.role == "assistant" and isinstance(block, ToolResultBlock | ImageBlock):
                    raise ValueError(f"{where}: a {block.type} block goes in a user message")
                if isinstance(block, ToolResultBlock) and block.tool_use_id not in called:
                    raise ValueError(
                        f"{where}.tool_use_id: {block.tool_use_id!r} answers no tool_use block of the assistant "
                        "message before it"
                    )
            called = {b.id for b in blocks if isinstance(b, ToolUseBlock)} if message.role == "assistant" else set()
        names = [tool.name for tool in self.tools or () if isinstance(tool, CustomTool)]
        choice = self.tool_choice
        if choice is not None and choice.type == "tool" and choice.name not in names:
            raise ValueError(f"tool_choice.name: {choice.name!r} is not a tool of the request")
        return self


class MessagesRequest(CountTokensRequest):
    """The Messages request body. Fields Sluice has no model for (`service_tier`, `container`, `mcp_servers`…)
    reach Anthropic providers as they came."""

    max_tokens: int = Field(gt=0, description="Required, as Anthropic requires it.")
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, gt=0)
    stop_sequences: list[str] | None = Field(default=None, max_length=1000)
    metadata: dict[str, Any] | None = None


def to_sluice(body: MessagesRequest, raw: dict[str, Any], beta: str | None) -> dict[str, Any]:
    """The Messages body as a Sluice request body: the canonical conversation (what every provider type reads),
    and `native`, the client's own body and `anthropic-beta` header (what an Anthropic provider sends)."""
    untranslated: list[str] = []
    messages: list[dict[str, Any]] = []
    system = system_text(body.system)
    if system:
        messages.append({"role": "system", "content": system})
    for position, message in enumerate(body.messages):
        messages += canonical_messages(message, position, untranslated)
    payload: dict[str, Any] = {"workflow": body.model, "api": API, "messages": messages}
    tools = []
    for position, tool in enumerate(body.tools or ()):
        if isinstance(tool, CustomTool):
            function = {"name": tool.name, "parameters": tool.input_schema}
            if tool.description:
                function["description"] = tool.description
            tools.append({"type": "function", "function": function})
        else:
            untranslated.append(f"tools[{position}] ({tool.type})")
    if tools:
        payload["tools"] = tools
    if body.tool_choice is not None:
        choice = body.tool_choice
        modes = {"auto": "auto", "any": "required", "none": "none"}
        named = {"type": "function", "function": {"name": choice.name}}
        payload["tool_choice"] = named if choice.type == "tool" else modes[choice.type]
        if choice.disable_parallel_tool_use:
            payload["parallel_tool_calls"] = False
    for name, value in (
        ("max_tokens", body.max_tokens),
        ("temperature", body.temperature),
        ("top_p", body.top_p),
        ("stop", body.stop_sequences or None),
        ("metadata", body.metadata),
    ):
        if value is not None:
            payload[name] = value
    native: dict[str, Any] = {"body": raw}
    if beta:
        native["beta"] = beta
    if untranslated:
        native["untranslated"] = untranslated
    payload["native"] = native
    return payload


def system_text(system: str | list[TextBlock] | None) -> str:
    """The system prompt as one text (blocks joined with blank lines, as Anthropic reads them as paragraphs)."""
    if isinstance(system, list):
        return "\n\n".join(block.text for block in system if block.text)
    return system or ""


def canonical_messages(message: MessageParam, position: int, untranslated: list[str]) -> list[dict[str, Any]]:
    """One Anthropic turn as canonical messages: an assistant message (text, `tool_calls`), or a user turn's tool
    results as `tool` messages followed by a user message with the rest (the images of the results too)."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for index, block in enumerate(message.content):
        where = f"messages[{position}].content[{index}]"
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts += image_part(block, where, untranslated)
        elif isinstance(block, ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
        elif isinstance(block, ToolResultBlock):
            text, images = tool_result(block, where, untranslated)
            results.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": text})
            parts += images
        elif isinstance(block, OtherBlock):
            untranslated.append(f"{where} ({block.type})")
        # Thinking blocks are left out: the model's own reasoning, which only Anthropic takes back (in `native`).
    if message.role == "assistant":
        turn: dict[str, Any] = {"role": "assistant", "content": _content(parts) or (None if calls else "")}
        if calls:
            turn["tool_calls"] = calls
        return [turn]
    if parts or not results:
        return [*results, {"role": "user", "content": _content(parts)}]
    return results


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Parts as canonical content: one text part as a string, none as ""."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts or ""


def image_part(block: ImageBlock, where: str, untranslated: list[str]) -> list[dict[str, Any]]:
    """The image as a canonical part (none for a Files API image, which only Anthropic can resolve)."""
    source = block.source
    if isinstance(source, Base64Source):
        return [{"type": "image_url", "image_url": {"url": f"data:{source.media_type};base64,{source.data}"}}]
    if isinstance(source, URLSource):
        return [{"type": "image_url", "image_url": {"url": source.url}}]
    untranslated.append(f"{where} (image from the Files API)")
    return []


def tool_result(block: ToolResultBlock, where: str, untranslated: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text (an error's marked as such: the canonical tool message has no flag) and the images in
    it (they go in the user message after the results: the other APIs take images only there)."""
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(block.content, str):
        texts.append(block.content)
    for index, part in enumerate(block.content if isinstance(block.content, list) else ()):
        if isinstance(part, TextBlock):
            texts.append(part.text)
        elif isinstance(part, ImageBlock):
            images += image_part(part, f"{where}.content[{index}]", untranslated)
        else:
            untranslated.append(f"{where}.content[{index}] ({part.type})")
    text = "\n".join(texts)
    return (f"Error: {text}" if block.is_error else text), images
