"""The conversation fields every chat-shaped API accepts, in Chat Completions' JSON shape: messages with text and
image parts, assistant tool calls and tool results, the tools offered, the tool choice, the JSON mode.

`/v1/chat/completions`, `/v1/ai` and `/v1/ai/async` validate them here, so a mistake is a 422 naming the field
(`messages.2.content.1.image_url.url: …`) before anything runs; the engine reads them with
`sluice.engine.chat.ChatInput.from_body` and can rely on what is checked here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import jsonschema_rs
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from sluice.providers.messages import ImagePart, valid_base64

MAX_TEXT = 1_000_000  # characters of one message or part
MAX_IMAGE_URL = 20_000_000  # a data: URL carries the image itself (the body limit applies first)
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TextContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT)


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_IMAGE_URL, description="An https:// URL or a data:image/…;base64,… URL.")
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _link_or_inline(cls, url: str) -> str:
        if url.startswith(("https://", "http://")):
            return url
        inline = ImagePart(url).inline
        if inline is None or not inline[0].startswith("image/"):
            raise ValueError("expected an https:// URL or a data:image/<type>;base64,<data> URL")
        if not valid_base64(inline[1]):
            raise ValueError("the data: URL's base64 data is not valid base64")
        return url


class ImageContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["image_url"]
    image_url: ImageURL


def _part_type(part: Any) -> str | None:
    kind = part.get("type") if isinstance(part, dict) else getattr(part, "type", None)
    return f"[{kind}]" if kind in ("text", "image_url") else None


# Tagged by `type`; the tags are bracketed so error messages can leave them out of the field's path.
ContentPart = Annotated[
    Annotated[TextContent, Tag("[text]")] | Annotated[ImageContent, Tag("[image_url]")],
    Discriminator(
        _part_type,
        custom_error_type="invalid_part",
        custom_error_message="expected a part of type 'text' or 'image_url'",
    ),
]


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(default="", max_length=MAX_TEXT, description="JSON text, as the model wrote it.")


class ToolCallSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: (
        Annotated[str, Field(max_length=MAX_TEXT)] | Annotated[list[ContentPart], Field(max_length=1000)] | None
    ) = None
    name: str | None = Field(default=None, max_length=200)
    tool_calls: list[ToolCallSpec] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=200)

    @field_validator("content", mode="before")
    @classmethod
    def _text_or_parts(cls, content: Any) -> Any:
        if content is not None and not isinstance(content, str | list):
            raise ValueError("expected text (a string) or a list of content parts")
        return content

    @model_validator(mode="after")
    def _shape_of_its_role(self) -> ChatMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        if self.role == "tool":
            if not self.tool_call_id:
                raise ValueError("a tool message needs tool_call_id: the id of the call it answers")
            if self.content is None:
                raise ValueError("a tool message needs content: the tool's result")
        elif self.tool_call_id is not None:
            raise ValueError("only a tool message carries tool_call_id")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (an assistant message may instead carry tool_calls)")
        if isinstance(self.content, list) and self.role != "user":
            if any(isinstance(part, ImageContent) for part in self.content):
                raise ValueError("images go in user messages")
        return self


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Letters, digits, '_' or '-', up to 64.")
    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, Any] | None = Field(default=None, description="The arguments' JSON Schema.")
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _TOOL_NAME.match(name):
            raise ValueError("a tool name is 1-64 letters, digits, '_' or '-'")
        return name

    @field_validator("parameters")
    @classmethod
    def _a_json_schema(cls, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if parameters is None:
            return None
        try:
            jsonschema_rs.meta.validate(parameters)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise ValueError(f"not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
        if parameters.get("type", "object") != "object":
            raise ValueError('a tool\'s parameters are an object schema ({"type": "object", "properties": …})')
        return parameters


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    function: NamedFunction


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema_rs.meta.validate(schema)
        except (jsonschema_rs.ValidationError, ValueError) as exc:
            raise ValueError(f"not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
        return schema


class ResponseFormatSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_with_json_schema(self) -> ResponseFormatSpec:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs json_schema: {name, schema, strict}")
        return self


class Conversation(BaseModel):
    """The conversation part of a request body; the endpoints' own models add their fields."""

    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    tools: list[ToolSpec] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _calls_and_results_match(self) -> Conversation:
        if self.tools is None and self.tool_choice is None and not any(m.role == "tool" for m in self.messages):
            return self  # the plain conversation (most requests): no tool, no call, no result to match
        names = [tool.function.name for tool in self.tools or ()]
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"tools: two tools share a name ({', '.join(twice)})")
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in names:
            raise ValueError(f"tool_choice: names {self.tool_choice.function.name!r}, which is not in tools")
        if self.tool_choice == "required" and not names:
            raise ValueError("tool_choice: 'required' needs tools")
        called: set[str] = set()
        for index, message in enumerate(self.messages):
            if message.role == "assistant":
                called = {call.id for call in message.tool_calls or ()}
            elif message.role == "tool":
                if message.tool_call_id not in called:
                    raise ValueError(
                        f"messages.{index}.tool_call_id: {message.tool_call_id!r} answers no tool call of the "
                        "assistant message before it"
                    )
            else:
                called = set()
        return self

    def conversation_fields(self) -> dict[str, Any]:
        """These fields as the stored body holds them (Chat Completions' JSON, without the unset ones)."""
        if self.tools is None and self.tool_choice is None and self.parallel_tool_calls is None:
            plain = [_plain(message) for message in self.messages]
            if all(plain):  # text-only turns (most requests): written directly, as the dump below would write them
                return {"messages": plain}
        return self.model_dump(
            mode="json", include={"messages", "tools", "tool_choice", "parallel_tool_calls"}, exclude_none=True,
            by_alias=True,
        )  # fmt: skip


def _plain(message: ChatMessage) -> dict[str, Any] | None:
    """A text-only message as JSON (None for one with parts, calls or a name: `model_dump` writes those)."""
    if type(message.content) is str and message.tool_calls is None and message.name is None:
        if message.tool_call_id is None:
            return {"role": message.role, "content": message.content}
    return None
