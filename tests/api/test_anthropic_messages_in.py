"""The Messages body read into the canonical Sluice request body (`sluice.api.anthropic_in`), field by field, and
the 400s that name the field at fault."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sluice.api.anthropic_in import MessagesRequest, to_sluice
from sluice.api.conversation import Conversation
from sluice.api.errors import explain_validation_error
from sluice.engine.chat import ChatInput
from sluice.providers.messages import ImagePart, ToolCall, ToolChoice

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def translate(raw: dict[str, Any], beta: str | None = None) -> dict[str, Any]:
    return to_sluice(MessagesRequest.model_validate(raw), raw, beta)


def refusal(raw: dict[str, Any]) -> str:
    """The message of the 400 a body gets (what `sluice.api.errors` makes of the validation errors)."""
    with pytest.raises(ValidationError) as raised:
        MessagesRequest.model_validate(raw)
    return explain_validation_error(raised.value.errors())[0]


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "w", "max_tokens": 100, "messages": list(messages), **fields}


def test_every_field_is_read_into_the_canonical_shape() -> None:
    raw = body(
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Also this:"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21 C", "is_error": False},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        system=[
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be kind."},
        ],
        tools=[
            {
                "name": "get_weather",
                "description": "Weather.",
                "input_schema": SCHEMA,
                "cache_control": {"type": "ephemeral"},
            }
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        service_tier="auto",
    )
    payload = translate(raw, beta="interleaved-thinking-2025-05-14")
    assert payload == {
        "workflow": "w",
        "api": "anthropic.messages",
        "messages": [
            {"role": "system", "content": "Be brief.\n\nBe kind."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "21 C"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Also this:"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA, "description": "Weather."}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "max_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "metadata": {"user_id": "u-1"},
        "native": {"body": raw, "beta": "interleaved-thinking-2025-05-14"},
    }
    Conversation.model_validate(payload)  # what `ChatInput.from_body` relies on holds
    chat = ChatInput.from_body(payload)
    assert chat.messages[2].tool_calls == (ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),)
    assert chat.messages[4].content[1] == ImagePart(f"data:image/png;base64,{PIXEL}")  # type: ignore[index]
    assert chat.tool_choice == ToolChoice("required") and chat.parallel_tool_calls is False
    assert chat.params == {"temperature": 0.5, "max_tokens": 100, "top_p": 0.9, "stop": ["END"]}
    assert chat.native == payload["native"]


@pytest.mark.parametrize(
    ("choice", "canonical"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], canonical: Any) -> None:
    tools = [{"name": "get_weather", "input_schema": SCHEMA}]
    payload = translate(body({"role": "user", "content": "hi"}, tools=tools, tool_choice=choice))
    assert payload["tool_choice"] == canonical and "parallel_tool_calls" not in payload


def test_tool_results_come_first_with_their_images_after_and_an_error_is_marked() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PIXEL}}
    raw = body(
        {"role": "user", "content": "Screenshot and read."},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "shot", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "read", "input": {"path": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "taken"}, image]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "no such file", "is_error": True},
            ],
        },
    )
    messages = translate(raw)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}},
            {"id": "t2", "type": "function", "function": {"name": "read", "arguments": '{"path":"x"}'}},
        ],
    }
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "taken"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: no such file"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PIXEL}"}}]},
    ]
    Conversation.model_validate(translate(raw))


def test_what_has_no_canonical_form_is_listed_as_untranslated() -> None:
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Doc."}}
    raw = body(
        {"role": "user", "content": [document, {"type": "text", "text": "Summarise."}]},
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"name": "f", "input_schema": SCHEMA},
        ],
    )
    payload = translate(raw)
    assert payload["native"]["untranslated"] == ["messages[0].content[0] (document)", "tools[0] (web_search_20250305)"]
    assert payload["messages"] == [{"role": "user", "content": "Summarise."}]
    assert [tool["function"]["name"] for tool in payload["tools"]] == ["f"]


def test_an_assistant_turn_of_thinking_only_is_an_empty_message() -> None:
    raw = body(
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
        {"role": "user", "content": "well?"},
    )
    assert translate(raw)["messages"][1] == {"role": "assistant", "content": ""}
    assert ChatInput.from_body(translate(raw)).messages[1].parts == ()  # the reasoning is Anthropic's alone


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": "w", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
        (body(), "messages: List should have at least 1 item after validation, not 0"),
        (
            body(
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yes?"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "this"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%"}},
                    ],
                },
            ),
            "messages[2].content[1].source.data: not valid base64",
        ),
        (
            body({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": PIXEL}}]}),
            "messages[0].content[0].source.media_type: Field required",
        ),
        (
            body({"role": "user", "content": [{"type": "image", "source": {"type": "bytes"}}]}),
            "messages[0].content[0].source: expected a type of 'base64', 'url', 'file'",
        ),
        (
            body({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope"}]}),
            "messages[0].content[0].tool_use_id: 'nope' answers no tool_use block of the assistant message before it",
        ),
        (
            body({"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}),
            "messages[0].content[0]: a tool_use block goes in an assistant message",
        ),
        (body({"role": "system", "content": "hi"}), "messages[0].role: Input should be 'user' or 'assistant'"),
        (
            body({"role": "user", "content": "hi"}, tool_choice={"type": "tool", "name": "f"}),
            "tool_choice.name: 'f' is not a tool of the request",
        ),
        (
            body({"role": "user", "content": "hi"}, temperature=1.5),
            "temperature: Input should be less than or equal to 1",
        ),
    ],
)
def test_a_bad_body_is_refused_naming_the_field(raw: dict[str, Any], message: str) -> None:
    assert refusal(raw) == message
