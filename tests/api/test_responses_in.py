"""`sluice.api.responses_in`: a Responses body read into the canonical Chat Completions JSON, and every mistake a
400 naming the field as the client wrote it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from sluice.api.errors import explain_validation_error
from sluice.api.responses_in import ResponsesRequest, to_sluice
from sluice.engine.chat import ChatInput

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
CALL = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}


def payload(**body: Any) -> dict[str, Any]:
    return to_sluice(ResponsesRequest.model_validate({"model": "demo", **body}))


def refusal(**body: Any) -> tuple[str, str | None]:
    """The message and `param` of the 400 a body gets (as `sluice.api.errors` renders it)."""
    with pytest.raises((ValidationError, RequestValidationError)) as raised:
        payload(**body)
    return explain_validation_error(raised.value.errors())


def test_a_string_input_is_one_user_message_and_the_fields_map_to_their_canonical_names() -> None:
    body = payload(
        input="Hi",
        instructions="Be brief.",
        max_output_tokens=50,
        temperature=0.2,
        top_p=0.9,
        metadata={"user": "u1"},
        user="end-user-7",
        reasoning={"effort": "low"},
        store=False,
    )
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert body["api"] == "openai.responses" and body["workflow"] == "demo"
    assert (body["system"], body["max_tokens"], body["temperature"], body["top_p"]) == ("Be brief.", 50, 0.2, 0.9)
    assert body["metadata"] == {"user": "u1"}
    assert body["passthrough"] == {"user": "end-user-7", "reasoning_effort": "low"}
    assert body["native"] == {"store": False}
    chat = ChatInput.from_body(body)  # what the engine reads
    assert chat.system == "Be brief." and chat.params == {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9}


def test_items_become_chat_messages_with_calls_merged_into_one_assistant_turn() -> None:
    body = payload(
        input=[
            {"role": "developer", "content": "Use tools."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather here?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}", "detail": "low"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {**CALL, "id": "fc_1", "status": "completed"},
            {**CALL, "call_id": "call_2", "arguments": '{"city": "Oslo"}'},
            {"type": "function_call_output", "call_id": "call_2", "output": '{"c": 3}'},
            {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "21"}]},
        ],
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    assert body["messages"] == [
        {"role": "developer", "content": "Use tools."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": '{"c": 3}'},
        {"role": "tool", "tool_call_id": "call_1", "content": "21"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER.items() if k != "type"},
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    chat = ChatInput.from_body(body)
    assert [m.role for m in chat.messages] == ["system", "user", "assistant", "tool", "tool"]
    assert chat.tool_choice is not None and chat.tool_choice.name == "get_weather"


def test_the_previous_responses_turn_comes_first_and_a_call_output_may_answer_it() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
    ]
    request = ResponsesRequest.model_validate(
        {
            "model": "demo",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "21"}],
            "previous_response_id": "req_1",
        }
    )
    body = to_sluice(request, history)
    answer = {k: v for k, v in history[1].items() if v is not None}  # as the canonical JSON keeps it
    assert body["messages"] == [history[0], answer, {"role": "tool", "tool_call_id": "call_1", "content": "21"}]
    assert body["native"] == {"previous_response_id": "req_1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}}, {}),
        ({"format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
        (
            {"format": {"type": "json_schema", "name": "sum", "schema": {"type": "object"}}},
            {"response_format": {"type": "json_schema", "json_schema": {"name": "sum", "schema": {"type": "object"}}}},
        ),
        (  # strict: held to the schema like a workflow's
            {"format": {"type": "json_schema", "name": "sum", "schema": {"type": "object"}, "strict": True}},
            {"schema": {"type": "object"}},
        ),
    ],
)
def test_text_format_maps_as_chat_completions_response_format(text: dict[str, Any], expected: dict[str, Any]) -> None:
    body = payload(input="1+1?", text=text)
    assert {k: body[k] for k in ("schema", "response_format") if k in body} == expected
    assert body["native"]["text"] == text


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "hi"},
                            {"type": "input_image", "image_url": "ftp://x/y.png"},
                        ],
                    }
                ]
            },
            "input[0].content[1].image_url",
            "https:// URL",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
            "no file store",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio", "data": "…"}]}]},
            "input[0].content[0]",
            "input_text",
        ),
        ({"input": "hi", "tools": [WEATHER, {"type": "web_search"}]}, "tools[1].type", "'web_search' tools"),
        (
            {"input": "hi", "tools": [{**WEATHER, "parameters": {"type": "objekt"}}]},
            "tools[0].parameters",
            "JSON Schema",
        ),
        ({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}]}, "input[0].type", "'reasoning' items"),
        ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "tool_choice", "not supported"),
        ({"input": "hi", "tool_choice": "required"}, "tool_choice", "needs tools"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation", "previous_response_id"),
        ({"input": "hi", "modalities": ["text"]}, "modalities", "Extra inputs"),
        (
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call_output", "call_id": "call_9", "output": "x"},
                ]
            },
            "input[1].call_id",
            "answers no function_call",
        ),
        (
            {
                "input": [
                    CALL,
                    {"role": "user", "content": "and?"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "21"},
                ]
            },
            "input[2].call_id",
            "answers no function_call",
        ),
    ],
)
def test_a_bad_field_is_named_as_the_client_wrote_it(body: dict[str, Any], param: str, says: str) -> None:
    message, named = refusal(**body)
    assert named == param
    assert says in message and message.startswith(param)
