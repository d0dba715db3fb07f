"""The canonical conversation every adapter translates to and from its provider's wire format.

One model for every API Sluice speaks and every provider it calls (docs/translation.md has the field-by-field table):
messages whose content is text or parts (text, image), assistant messages carrying tool calls, tool results, the
tools offered and the choice among them, and the client's JSON mode. Answers come back as `Chunk`s
(`sluice.providers.base`) carrying text, `ToolCallDelta`s and the model's reasoning as `ThinkingDelta`s.

The accepted request body keeps OpenAI Chat Completions' JSON shape (the lingua franca: what `/v1/chat/completions`,
`/v1/ai` and the request log hold); `ChatInput.from_body` (`sluice.engine.chat`) reads it into these classes once.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by link (`https://…`) or inline (`data:<media type>;base64,<data>`)."""

    url: str
    detail: str | None = None  # OpenAI's low | high | auto; others ignore it

    @property
    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) of a `data:` URL; None for a link."""
        if not self.url.startswith("data:"):
            return None
        head, _, data = self.url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64" or not data:
            return None
        return media_type or "application/octet-stream", data


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: `arguments` is the JSON text it wrote (kept as text: it may be invalid JSON)."""

    id: str
    name: str
    arguments: str

    def to_openai(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call. The first piece of call `index` carries its `id` and `name`; later pieces
    carry more of its `arguments` text, exactly as OpenAI streams `tool_calls[index].function.arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of the model's reasoning; `index` counts its thinking blocks in answer order. A piece carries more
    `text` of block `index`, or its `signature` (Anthropic's: the block must come back with it, unchanged, on a later
    turn), or `redacted` data (an encrypted block of its own, returned as it came)."""

    index: int
    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True)
class Message:
    role: str  # system | user | assistant | tool (developer is read as system)
    content: str | tuple[Part, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn that called tools
    tool_call_id: str | None = None  # a tool result: the call it answers
    name: str | None = None  # a tool result: the function's name (Gemini matches results by name)

    @property
    def parts(self) -> tuple[Part, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @property
    def text(self) -> str:
        """The text of the message, parts joined; images left out."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(part for part in self.parts if isinstance(part, ImagePart))


@dataclass(frozen=True)
class Tool:
    """A function the model may call; `parameters` is its JSON Schema."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None


@dataclass(frozen=True)
class ToolChoice:
    """auto: the model decides; none: no tool; required: some tool; tool: the one named."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(frozen=True)
class ResponseFormat:
    """The client's JSON mode (`response_format` of Chat Completions), asked natively of the provider. A strict
    `json_schema` is handled like a workflow schema instead: validated, repaired, re-asked (`.schema` of the
    `ProviderRequest`)."""

    type: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None


def valid_base64(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
