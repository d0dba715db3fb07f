"""What the Anthropic adapter sends: the Messages request it makes of each part of the canonical request (tools and
tool choice, tool results, images, JSON modes and the structured-output tool, parameters), as the wire-faithful fake
received it; what Anthropic cannot take is refused before anything is sent (docs/translation.md, "Anthropic
Messages")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sluice.providers.anthropic import AnthropicProvider
from sluice.providers.base import Chunk, Message, ProviderRequest
from sluice.providers.errors import Unsupported
from sluice.providers.messages import (
    ImagePart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from sluice.structured.native import TOOL_NAME, prepare
from sluice.testing import FakeProvider, Script
from tests.providers.adapters import PIXEL, SCHEMA, adapter, collect, fake_usage

WEATHER_PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = Tool(name="get_weather", description="The weather in a city.", parameters=WEATHER_PARAMETERS)
TIME = Tool(name="get_time")
ASK = ProviderRequest(model="claude-x", messages=(Message("user", "Weather in Paris?"),), tools=(WEATHER, TIME))
TOOLS_SENT = [
    {"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_PARAMETERS},
    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},  # no description: none sent
]
RESPOND_SENT = {"name": TOOL_NAME, "description": "Give the answer in this exact structure.", "input_schema": SCHEMA}


@pytest.fixture
async def anthropic() -> AsyncIterator[tuple[AnthropicProvider, FakeProvider]]:
    """The Anthropic adapter aimed at a fresh fake."""
    async with (
        FakeProvider("anthropic") as fake,
        adapter(fake, AnthropicProvider, type="anthropic", api_key="k") as provider,
    ):
        yield provider, fake


def calls(*deltas: ToolCallDelta) -> Chunk:
    """A chunk of call deltas."""
    return Chunk(tool_calls=deltas)


# Tools ---------------------------------------------------------------------------------------------------------------


async def test_tools_are_input_schemas_and_a_request_nobody_streams_gets_the_same_chunks(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    script = Script(tool_calls=({"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_01"},))
    fake.script(script, script)
    whole = await collect(provider, replace(ASK, tool_choice=ToolChoice("auto"), stream=False))
    streamed = await collect(provider, replace(ASK, tool_choice=ToolChoice("auto")))
    sent = fake.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "stream": True,  # always streamed: `stream=False` is a hint
        "tools": TOOLS_SENT,
        "tool_choice": {"type": "auto"},
    }
    assert fake.requests[1].body == sent.body
    assert (
        whole
        == streamed
        == [
            calls(ToolCallDelta(0, "toolu_01", "get_weather", "")),
            calls(ToolCallDelta(0, arguments='{"cit')),
            calls(ToolCallDelta(0, arguments='y":"P')),
            calls(ToolCallDelta(0, arguments='aris"}')),
            Chunk(usage=fake_usage(fake, 3), finish_reason="tool_calls"),
        ]
    )


@pytest.mark.parametrize(
    ("choice", "parallel", "sent"),
    [
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("tool", "get_time"), None, {"type": "tool", "name": "get_time"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            ToolChoice("tool", "get_time"),
            False,
            {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        ),
        (ToolChoice("none"), False, {"type": "none"}),  # no call at all: nothing to keep single
        (None, None, None),
        (None, True, None),  # parallel calls are Anthropic's default
    ],
)
async def test_tool_choice_and_parallel_tool_calls_are_tool_choice(
    anthropic: tuple[AnthropicProvider, FakeProvider],
    choice: ToolChoice | None,
    parallel: bool | None,
    sent: dict[str, Any] | None,
) -> None:
    provider, fake = anthropic
    await collect(provider, replace(ASK, tool_choice=choice, parallel_tool_calls=parallel))
    body = fake.requests[0].body
    assert body.get("tool_choice") == sent
    assert body["tools"] == TOOLS_SENT  # none: offered, not callable


async def test_without_tools_no_tool_choice_is_sent(anthropic: tuple[AnthropicProvider, FakeProvider]) -> None:
    provider, fake = anthropic
    await collect(provider, replace(ASK, tools=(), tool_choice=ToolChoice("required"), parallel_tool_calls=False))
    assert "tools" not in fake.requests[0].body and "tool_choice" not in fake.requests[0].body


# Tool results --------------------------------------------------------------------------------------------------------


async def test_a_tool_result_turn_is_tool_use_blocks_then_one_user_turn_of_tool_results(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    conversation = (
        Message("user", "Weather in Paris and Oslo?"),
        Message(
            "assistant",
            "Checking both.",
            tool_calls=(
                ToolCall("toolu_a", "get_weather", '{"city": "Paris"}'),
                ToolCall("toolu_b", "get_weather", '{"city": "Oslo"}'),
            ),
        ),
        Message("tool", '{"temp": 21, "sky": "clear"}', tool_call_id="toolu_a"),
        Message("tool", "4 degrees, snow", tool_call_id="toolu_b", name="get_weather"),
        Message("assistant", "", tool_calls=(ToolCall("toolu_c", "get_time", ""),)),
        Message("tool", (TextPart("12:"), TextPart("00")), tool_call_id="toolu_c"),
        Message("user", "Thanks!"),
    )
    await collect(provider, ProviderRequest(model="claude-x", messages=conversation, system="Be brief."))
    assert fake.requests[0].body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "stream": True,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Oslo"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_a", "content": '{"temp": 21, "sky": "clear"}'},
                    {"type": "tool_result", "tool_use_id": "toolu_b", "content": "4 degrees, snow"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_c", "name": "get_time", "input": {}}],  # "" → {}
            },
            {
                "role": "user",  # the result and the next user message: one turn, the result first
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_c", "content": "12:00"},
                    {"type": "text", "text": "Thanks!"},
                ],
            },
        ],
    }


async def test_tool_results_come_first_in_their_turn(anthropic: tuple[AnthropicProvider, FakeProvider]) -> None:
    provider, fake = anthropic
    conversation = (
        Message("user", "Time?"),
        Message("assistant", "", tool_calls=(ToolCall("toolu_c", "get_time", "{}"),)),
        Message("user", "Take your time."),
        Message("tool", "12:00", tool_call_id="toolu_c"),
    )
    await collect(provider, ProviderRequest(model="claude-x", messages=conversation))
    assert fake.requests[0].body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_c", "content": "12:00"},
            {"type": "text", "text": "Take your time."},
        ],
    }


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", '"Paris"'])
async def test_a_replayed_call_whose_arguments_are_not_an_object_is_unsupported(
    anthropic: tuple[AnthropicProvider, FakeProvider], arguments: str
) -> None:
    provider, fake = anthropic
    conversation = (
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("toolu_a", "get_weather", arguments),)),
        Message("tool", "?", tool_call_id="toolu_a"),
    )
    with pytest.raises(Unsupported, match=r"messages\[1\].*'toolu_a' are not a JSON object") as caught:
        await collect(provider, ProviderRequest(model="claude-x", messages=conversation))
    assert caught.value.code == "unsupported_by_provider" and not caught.value.fail_fast
    assert fake.requests == []


# Images --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (f"data:image/png;base64,{PIXEL}", {"type": "base64", "media_type": "image/png", "data": PIXEL}),
        ("https://example.com/cat.png", {"type": "url", "url": "https://example.com/cat.png"}),
    ],
)
async def test_an_image_is_an_image_block(
    anthropic: tuple[AnthropicProvider, FakeProvider], url: str, source: dict[str, Any]
) -> None:
    provider, fake = anthropic
    content = (TextPart("What is this?"), ImagePart(url, detail="low"))
    await collect(provider, ProviderRequest(model="claude-x", messages=(Message("user", content),)))
    assert fake.requests[0].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image", "source": source}]}
    ]


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (Message("user", (ImagePart(f"data:image/bmp;base64,{PIXEL}"),)), r"messages\[1\].*not image/bmp"),
        (
            Message("assistant", (TextPart("Here:"), ImagePart(f"data:image/png;base64,{PIXEL}"))),
            r"messages\[1\].*images in user messages only",
        ),
    ],
)
async def test_an_image_anthropic_cannot_take_is_unsupported_before_anything_is_sent(
    anthropic: tuple[AnthropicProvider, FakeProvider], message: Message, error: str
) -> None:
    provider, fake = anthropic
    with pytest.raises(Unsupported, match=error) as caught:
        await collect(provider, ProviderRequest(model="claude-x", messages=(Message("user", "Look."), message)))
    assert caught.value.code == "unsupported_by_provider" and not caught.value.fail_fast
    assert fake.requests == []


# JSON modes and structured output ------------------------------------------------------------------------------------

JSON_ASKED = "Answer with a single JSON object and nothing else: no Markdown code fence, no text before or after it."


@pytest.mark.parametrize(
    ("wanted", "instruction"),
    [
        (ResponseFormat("json_object"), JSON_ASKED),
        (
            ResponseFormat("json_schema", SCHEMA, "sum"),
            JSON_ASKED
            + ' It must match this JSON Schema:\n{"type":"object","properties":{"answer":{"type":"integer"}},'
            '"required":["answer"]}',
        ),
    ],
)
async def test_json_modes_are_an_instruction_after_the_system_prompt(
    anthropic: tuple[AnthropicProvider, FakeProvider], wanted: ResponseFormat, instruction: str
) -> None:
    provider, fake = anthropic
    request = ProviderRequest(
        model="claude-x", messages=(Message("user", "1+1?"),), system="Be brief.", response_format=wanted
    )
    await collect(provider, request)
    body = fake.requests[0].body
    assert body["system"] == "Be brief.\n\n" + instruction
    assert "tools" not in body and "tool_choice" not in body
    await collect(provider, replace(request, system=None))
    assert fake.requests[1].body["system"] == instruction


async def test_a_workflow_schema_is_the_forced_respond_tool_whose_input_is_the_text(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    asked = ProviderRequest(
        model="claude-x",
        messages=(Message("user", "1+1?"),),
        schema=SCHEMA,
        response_format=ResponseFormat("json_object"),  # the workflow's schema wins: no instruction
    )
    mode, request = prepare(asked, "tool")
    assert mode == "native"
    fake.script(Script(text='{"answer": 2}'))
    chunks = await collect(provider, request)
    assert fake.requests[0].body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "1+1?"}],
        "stream": True,
        "tools": [RESPOND_SENT],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
    }
    assert chunks == [
        Chunk(text='{"answer'),
        Chunk(text='":'),
        Chunk(text=" 2}"),
        Chunk(usage=fake_usage(fake, 3), finish_reason="stop"),  # stop_reason tool_use, but the tool is the answer
    ]


async def test_client_tools_with_the_structured_tool_let_the_model_call_either(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    _, request = prepare(replace(ASK, schema=SCHEMA), "tool")
    fake.script(
        Script(text='{"answer": 2}'),
        Script(
            text="Ignored.", tool_calls=({"name": "get_time", "arguments": {}, "id": "toolu_t"},), argument_chunks=1
        ),
    )
    answered = await collect(provider, request)
    called = await collect(provider, request)
    body = fake.requests[0].body
    assert body["tools"] == [*TOOLS_SENT, RESPOND_SENT]
    assert body["tool_choice"] == {"type": "any"}
    assert answered == [
        Chunk(text='{"answer'),
        Chunk(text='":'),
        Chunk(text=" 2}"),
        Chunk(usage=fake_usage(fake, 3), finish_reason="stop"),
    ]
    assert called[:-1] == [  # text beside a forced tool is not the answer: only the call
        calls(ToolCallDelta(0, "toolu_t", "get_time", "")),
        calls(ToolCallDelta(0, arguments="{}")),
    ]
    assert called[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        (None, {"type": "any"}),
        (ToolChoice("auto"), {"type": "any"}),
        (ToolChoice("required"), {"type": "any"}),
        (ToolChoice("none"), {"type": "tool", "name": TOOL_NAME}),
        (ToolChoice("tool", "get_time"), {"type": "tool", "name": "get_time"}),
    ],
)
async def test_the_client_tool_choice_beside_the_structured_tool(
    anthropic: tuple[AnthropicProvider, FakeProvider], choice: ToolChoice | None, sent: dict[str, Any]
) -> None:
    provider, fake = anthropic
    _, request = prepare(replace(ASK, schema=SCHEMA, tool_choice=choice), "tool")
    fake.script(Script(text='{"answer": 2}', tool_calls=({"name": "get_time", "arguments": {}},)))
    await collect(provider, request)
    assert fake.requests[0].body["tool_choice"] == sent
    assert fake.requests[0].body["tools"] == [*TOOLS_SENT, RESPOND_SENT]


async def test_a_client_tool_named_like_the_structured_tool_is_unsupported(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    _, request = prepare(replace(ASK, tools=(WEATHER, Tool(name=TOOL_NAME)), schema=SCHEMA), "tool")
    with pytest.raises(Unsupported, match="named respond, the name structured output uses") as caught:
        await collect(provider, request)
    assert caught.value.code == "unsupported_by_provider"
    assert fake.requests == []


# Parameters ----------------------------------------------------------------------------------------------------------


async def test_parameters_by_anthropic_names(anthropic: tuple[AnthropicProvider, FakeProvider]) -> None:
    provider, fake = anthropic
    params = {"max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": "END", "seed": 7, "top_k": 40}
    await collect(provider, ProviderRequest(model="claude-x", messages=(Message("user", "hi"),), params=params))
    assert fake.requests[0].body == {
        "model": "claude-x",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop_sequences": ["END"],  # seed: no equivalent, left out
        "top_k": 40,  # a chain entry's own parameter goes as written
    }
    await collect(provider, replace(ASK, params={"stop": ["END", "STOP"]}))
    assert fake.requests[1].body["stop_sequences"] == ["END", "STOP"]


async def test_passthrough_fields_are_not_sent_and_system_messages_join_the_system_prompt(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    messages = (Message("system", "Use metric."), Message("user", "hi"), Message("system", "No emoji."))
    request = ProviderRequest(
        model="claude-x",
        messages=messages,
        system="Be brief.",
        passthrough={"user": "u-1", "logprobs": True, "service_tier": "auto"},
    )
    await collect(provider, request)
    assert fake.requests[0].body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "system": "Be brief.\n\nUse metric.\n\nNo emoji.",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
