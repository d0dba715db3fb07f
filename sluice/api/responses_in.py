"""The Responses API request (`POST /v1/responses`), read into the canonical Chat Completions JSON that every other
API stores and `sluice.engine.chat.ChatInput.from_body` reads.

Validated here, so a mistake is a 400 naming the field as the client wrote it (`input[2].content[0].image_url`),
never the canonical one it became. Items are read leniently (unknown keys are ignored), because Responses apps send
back the output items they were given, with every key those carry; the top level is strict, and what Sluice cannot
do (hosted tools, item types other than messages and function calls, stored prompts and conversations) is refused
by name rather than ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from sluice.api.conversation import MAX_TEXT, Conversation, FunctionSpec, ImageURL, JsonSchemaSpec
from sluice.surfaces import RESPONSES

# Forwarded to OpenAI-shaped providers (Chat Completions has the same fields).
FORWARDED = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
_REFUSED = {
    "conversation": "Sluice keeps no conversation objects: chain turns with previous_response_id, or send the input",
    "prompt": "Sluice has no stored prompts: send the instructions and input",
    "context_management": "Sluice does not compact context",
}
_ITEM_TYPES = ("message", "function_call", "function_call_output")


# Items and parts ignore the keys Sluice does not read: apps send back the output items they got, with all of theirs.
_LENIENT = ConfigDict(extra="ignore")


class InputText(BaseModel):
    model_config = _LENIENT

    type: Literal["input_text", "output_text"]
    text: str = Field(max_length=MAX_TEXT)


class Refusal(BaseModel):
    model_config = _LENIENT

    type: Literal["refusal"]
    refusal: str = Field(max_length=MAX_TEXT)


class InputImage(BaseModel):
    model_config = _LENIENT

    type: Literal["input_image"]
    image_url: str | None = Field(default=None, max_length=20_000_000)
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None

    @field_validator("image_url")
    @classmethod
    def _link_or_inline(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            return ImageURL(url=url).url  # the Chat face's check, and its message
        except ValidationError as exc:
            raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None

    @field_validator("file_id")
    @classmethod
    def _no_files(cls, file_id: str | None) -> str | None:
        if file_id is not None:
            raise ValueError("Sluice has no file store: send the image as image_url (an https:// or data: URL)")
        return file_id

    @model_validator(mode="after")
    def _an_image(self) -> InputImage:
        if self.image_url is None:
            raise ValueError("an input_image needs image_url (an https:// or data: URL)")
        return self


def _part_type(part: Any) -> str | None:
    kind = part.get("type") if isinstance(part, dict) else getattr(part, "type", None)
    if kind in ("input_text", "output_text"):
        return "[text]"
    return f"[{kind}]" if kind in ("input_image", "refusal") else None


# Bracketed tags: the error messages leave them out of the field's path (`sluice.api.errors`).
Part = Annotated[
    Annotated[InputText, Tag("[text]")]
    | Annotated[InputImage, Tag("[input_image]")]
    | Annotated[Refusal, Tag("[refusal]")],
    Discriminator(
        _part_type,
        custom_error_type="invalid_part",
        custom_error_message="expected a part of type 'input_text', 'input_image' or 'output_text' (Sluice reads "
        "no files or audio)",
    ),
]


class MessageItem(BaseModel):
    model_config = _LENIENT

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Annotated[str, Field(max_length=MAX_TEXT)] | Annotated[list[Part], Field(max_length=1000)]

    @model_validator(mode="after")
    def _images_from_users(self) -> MessageItem:
        if self.role != "user" and isinstance(self.content, list):
            if any(isinstance(part, InputImage) for part in self.content):
                raise ValueError("images go in user messages")
        return self


class FunctionCallItem(BaseModel):
    model_config = _LENIENT

    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(default="", max_length=MAX_TEXT)


class FunctionCallOutputItem(BaseModel):
    model_config = _LENIENT

    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=200, description="The call_id of the function_call it answers.")
    output: Annotated[str, Field(max_length=MAX_TEXT)] | Annotated[list[Part], Field(max_length=1000)]

    @field_validator("output")
    @classmethod
    def _text_only(cls, output: str | list[Any]) -> str | list[Any]:
        if isinstance(output, list) and any(not isinstance(part, InputText) for part in output):
            raise ValueError("a function_call_output is passed on as text: give it text parts only")
        return output


def _item_type(item: Any) -> str | None:
    kind = item.get("type", "message") if isinstance(item, dict) else getattr(item, "type", None)
    return f"[{kind}]" if kind in _ITEM_TYPES else None


Item = Annotated[
    Annotated[MessageItem, Tag("[message]")]
    | Annotated[FunctionCallItem, Tag("[function_call]")]
    | Annotated[FunctionCallOutputItem, Tag("[function_call_output]")],
    Discriminator(_item_type, custom_error_type="invalid_item", custom_error_message="expected an input item"),
]


class FunctionTool(FunctionSpec):
    """A Responses function tool: Chat Completions' function spec, flattened (`{type, name, parameters…}`)."""

    model_config = _LENIENT

    type: Literal["function"]


class NamedFunctionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["function"]
    name: str


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object"]


class JsonSchemaFormat(JsonSchemaSpec):
    """`text.format` json_schema: Chat Completions' `json_schema` spec, flattened."""

    type: Literal["json_schema"]


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Annotated[TextFormat | JsonSchemaFormat, Field(discriminator="type")] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # no equivalent: accepted, not sent


class ReasoningConfig(BaseModel):
    model_config = _LENIENT

    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(BaseModel):
    """The `POST /v1/responses` body. Sluice's own `webhook_url`, `delivery_method` and `events` are accepted beside
    OpenAI's fields (send them with the SDK's `extra_body`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=300, description="A workflow name, or `provider/model`.")
    input: Annotated[str, Field(max_length=MAX_TEXT)] | Annotated[list[Item], Field(min_length=1, max_length=1000)]
    instructions: str | None = Field(default=None, max_length=100_000)
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedFunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=16
    )
    previous_response_id: str | None = Field(default=None, max_length=200)
    store: bool | None = None
    stream: bool | None = None
    background: bool | None = None
    reasoning: ReasoningConfig | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    # Accepted without effect: Sluice has no equivalent, and none of them changes what the answer says.
    include: list[str] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    stream_options: dict[str, Any] | None = None
    top_logprobs: int | None = None
    max_tool_calls: int | None = None
    background_options: dict[str, Any] | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    delivery_method: Literal["websocket", "webhook", "none"] | None = None
    events: list[str] | None = Field(default=None, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _refuse_what_sluice_cannot_do(cls, body: Any) -> Any:
        """Names the field a client must change: a hosted tool, an item type, a feature Sluice has not."""
        if not isinstance(body, dict):
            return body
        for name, why in _REFUSED.items():
            if body.get(name) is not None:
                raise ValueError(f"{name}: not supported: {why}")
        for index, tool in enumerate(body.get("tools") or ()):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                raise ValueError(
                    f"tools[{index}].type: {kind!r} tools are not supported: Sluice runs no hosted tools; "
                    "offer function tools (type 'function') and run them in your app"
                )
        items = body.get("input")
        for index, item in enumerate(items if isinstance(items, list) else ()):
            kind = item.get("type", "message") if isinstance(item, dict) else None
            if kind not in _ITEM_TYPES:
                raise ValueError(
                    f"input[{index}].type: {kind!r} items are not supported; Sluice reads message, function_call "
                    "and function_call_output items"
                )
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") != "function":
            raise ValueError(
                f"tool_choice: {choice.get('type')!r} is not supported; use 'auto', 'none', 'required' or "
                "{'type': 'function', 'name': …}"
            )
        return body


def invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 400 naming the field at `loc` (as the client wrote it), for what only the translation can find."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": None}])


def to_sluice(body: ResponsesRequest, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Responses body as a Sluice request body, in Chat Completions' JSON. `history`: the conversation of the
    previous response (`previous_response_id`), its answer last, which comes before this input."""
    messages = list(history or ())
    read_input(body.input, messages, start=len(messages))
    fields: dict[str, Any] = {"messages": messages}
    if body.tools:
        fields["tools"] = [{"type": "function", "function": _function_of(tool)} for tool in body.tools]
    if isinstance(body.tool_choice, NamedFunctionChoice):
        fields["tool_choice"] = {"type": "function", "function": {"name": body.tool_choice.name}}
    elif body.tool_choice is not None:
        fields["tool_choice"] = body.tool_choice
    if body.parallel_tool_calls is not None:
        fields["parallel_tool_calls"] = body.parallel_tool_calls
    try:
        conversation = Conversation.model_validate(fields).conversation_fields()
    except ValidationError as exc:  # what the items' own checks cannot see (a tool_choice naming no tool…)
        raise RequestValidationError(exc.errors(include_url=False)) from None
    payload: dict[str, Any] = {"workflow": body.model, "api": RESPONSES, **conversation}
    for name, value in (
        ("system", body.instructions),
        ("temperature", body.temperature),
        ("top_p", body.top_p),
        ("max_tokens", body.max_output_tokens),
        ("metadata", body.metadata),
        ("webhook_url", body.webhook_url),
        ("delivery_method", body.delivery_method),
        ("events", body.events),
    ):
        if value is not None:
            payload[name] = value
    text_format = body.text.format if body.text else None
    if isinstance(text_format, JsonSchemaFormat) and text_format.strict:
        payload["schema"] = text_format.schema_  # held to it like a workflow's schema (validation, repair, re-ask)
    elif isinstance(text_format, JsonSchemaFormat):
        spec = text_format.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"type"})
        payload["response_format"] = {"type": "json_schema", "json_schema": spec}
    elif text_format is not None and text_format.type == "json_object":
        payload["response_format"] = {"type": "json_object"}
    passthrough = {name: getattr(body, name) for name in FORWARDED if getattr(body, name) is not None}
    if body.reasoning is not None and body.reasoning.effort is not None:
        passthrough["reasoning_effort"] = body.reasoning.effort  # Chat Completions' name for it
    if passthrough:
        payload["passthrough"] = passthrough
    # The Responses fields the canonical shape has no place for, which the response object repeats (`native`: the
    # API's own part of the body; this one has no `body`, so no provider sends it, see `sluice.engine.chat`).
    native = {
        "previous_response_id": body.previous_response_id,
        "store": body.store,
        "text": body.text.model_dump(mode="json", by_alias=True, exclude_none=True) if body.text else None,
    }
    payload["native"] = {name: value for name, value in native.items() if value is not None}
    return payload


def read_input(items: str | list[Any], messages: list[dict[str, Any]], start: int = 0) -> None:
    """Appends the input's messages in Chat Completions' shape: consecutive assistant text and function_call items
    make one assistant message, each function_call_output a tool message, which must answer a call of the
    assistant message before it (as every provider requires). `start`: where the input begins in `messages`."""
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return
    for index, item in enumerate(items):
        last = messages[-1] if len(messages) > start else None  # never merged into the previous response's turn
        if isinstance(item, MessageItem) and item.role != "assistant":
            messages.append({"role": item.role, "content": _content(item.content)})
        elif isinstance(item, MessageItem):
            text = _text(item.content)
            if last is not None and last["role"] == "assistant":
                last["content"] = (last.get("content") or "") + text
            else:
                messages.append({"role": "assistant", "content": text})
        elif isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            if item.call_id not in _open_calls(messages):
                raise invalid(
                    ("input", index, "call_id"),
                    f"{item.call_id!r} answers no function_call before it (a function_call_output follows the "
                    "function_call items it answers, here or in the previous response)",
                )
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": _text(item.output)})


def _open_calls(messages: list[dict[str, Any]]) -> set[str]:
    """The calls a tool message may answer here: those of the last assistant message, if only tool messages
    follow it."""
    for message in reversed(messages):
        if message["role"] == "assistant":
            return {call["id"] for call in message.get("tool_calls") or ()}
        if message["role"] != "tool":
            return set()
    return set()


def _content(content: str | list[Any]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, InputImage):
            detail = "high" if part.detail == "original" else part.detail
            image = {"url": part.image_url, **({"detail": detail} if detail else {})}
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": part.text if isinstance(part, InputText) else part.refusal})
    return parts


def _text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text if isinstance(part, InputText) else part.refusal for part in content)


def _function_of(tool: FunctionTool) -> dict[str, Any]:
    return tool.model_dump(mode="json", exclude_none=True, include={"name", "description", "parameters", "strict"})
