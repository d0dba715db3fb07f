"""The Anthropic adapter translates the canonical request and answer exactly, against the wire-faithful fake:
the request body it sends, the chunks it yields, and through a real gateway the OpenAI-shaped answer of
`/v1/chat/completions` (docs/translation.md, "Anthropic Messages")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.providers.anthropic import AnswerReader, AnthropicProvider
from sluice.providers.base import Chunk, Message, ProviderRequest, Usage
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
from sluice.providers.pool import ProviderPool
from sluice.structured.native import TOOL_NAME, prepare
from sluice.testing import FakeProvider, Script
from sluice.workflows.loader import build_catalog
from tests.conftest import StartGateway, write_config

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
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
RESPOND_SENT = {"name": TOOL_NAME, "description": "Give the answer in this exact structure.", "input_schema": SCHEMA}


@pytest.fixture
async def anthropic() -> AsyncIterator[tuple[AnthropicProvider, FakeProvider]]:
    async with FakeProvider("anthropic") as fake:
        record = {"type": "anthropic", "api_key": "k", "base_url": fake.base_url}
        pool = ProviderPool(build_catalog({"providers": {"a": record}, "workflows": {}}, {}))
        try:
            provider = pool.get("a")
            assert isinstance(provider, AnthropicProvider)
            yield provider, fake
        finally:
            await pool.aclose()


async def collect(provider: AnthropicProvider, request: ProviderRequest) -> list[Chunk]:
    return [chunk async for chunk in provider.stream(request)]


def usage_of(fake: FakeProvider, units: int) -> Usage:
    """The fake's usage: input tokens from the size of the body it got, output tokens = pieces it streamed."""
    return Usage(len(orjson.dumps(fake.requests[-1].body)) // 16, units)


def calls(*deltas: ToolCallDelta) -> Chunk:
    return Chunk(tool_calls=deltas)


def read_all(reader: AnswerReader, events: list[tuple[str, dict[str, Any]]]) -> list[Chunk]:
    return [chunk for kind, payload in events if (chunk := reader.read(kind, {"type": kind, **payload})) is not None]


# Tools -----------------------------------------------------------------------------------------------------------


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
            Chunk(usage=usage_of(fake, 3), finish_reason="tool_calls"),
        ]
    )


async def test_a_streamed_call_is_its_opening_delta_then_its_arguments_as_split_upstream(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    arguments = {"city": "Oslo", "unit": "c"}
    script = Script(tool_calls=({"name": "get_weather", "arguments": arguments, "id": "toolu_02"},), argument_chunks=3)
    pieces = script.answer("").calls[0].pieces
    assert len(pieces) == 3 and "".join(pieces) == '{"city":"Oslo","unit":"c"}'
    fake.script(script)
    chunks = await collect(provider, replace(ASK, tools=(replace(WEATHER, strict=True),)))
    assert fake.requests[0].body["tools"] == [{**TOOLS_SENT[0], "strict": True}]
    assert "tool_choice" not in fake.requests[0].body  # no choice: Anthropic's default (auto)
    assert chunks == [
        calls(ToolCallDelta(0, "toolu_02", "get_weather", "")),
        *(calls(ToolCallDelta(0, arguments=piece)) for piece in pieces),
        Chunk(usage=usage_of(fake, 3), finish_reason="tool_calls"),
    ]


async def test_parallel_calls_are_numbered_in_order_after_the_text(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    answer_calls = (
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}, "id": "toolu_b"},
        {"name": "get_time", "arguments": {}},
    )
    fake.script(Script(text="Let me check.", tool_calls=answer_calls, argument_chunks=1))
    chunks = await collect(provider, ASK)
    assert chunks == [
        Chunk(text="Let"),
        Chunk(text=" me"),
        Chunk(text=" check."),
        calls(ToolCallDelta(0, "call_fake_0", "get_weather", "")),
        calls(ToolCallDelta(0, arguments='{"city":"Paris"}')),
        calls(ToolCallDelta(1, "toolu_b", "get_weather", "")),
        calls(ToolCallDelta(1, arguments='{"city":"Oslo","unit":"c"}')),
        calls(ToolCallDelta(2, "call_fake_2", "get_time", "")),
        calls(ToolCallDelta(2, arguments="{}")),
        Chunk(usage=usage_of(fake, 6), finish_reason="tool_calls"),  # 3 words, one piece per call
    ]


async def test_a_call_without_arguments_has_the_arguments_openai_gives_it(
    anthropic: tuple[AnthropicProvider, FakeProvider],
) -> None:
    provider, fake = anthropic
    fake.script(Script(tool_calls=({"name": "get_time", "arguments": "", "id": "toolu_t"},)))
    chunks = await collect(provider, ASK)
    assert chunks == [
        calls(ToolCallDelta(0, "toolu_t", "get_time", "")),
        calls(ToolCallDelta(0, arguments="{}")),  # at content_block_stop, no input_json_delta having come
        Chunk(usage=usage_of(fake, 1), finish_reason="tool_calls"),  # 0 pieces: message_start's count stands
    ]


def test_a_real_stream_reads_as_text_then_calls_and_passes_thinking_over() -> None:
    """Events as the API streams them: a thinking block, text, a call whose input begins with an empty
    `partial_json`, a call without arguments (only an empty `partial_json`)."""
    events = [
        ("message_start", {"message": {"usage": {"input_tokens": 25, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Rome, so"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}}),
        ("content_block_stop", {"index": 0}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Checking."}}),
        ("content_block_stop", {"index": 1}),
        (
            "content_block_start",
            {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
        ),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Ro'}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": 'me"}'}}),
        ("content_block_stop", {"index": 2}),
        (
            "content_block_start",
            {"index": 3, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}},
        ),
        ("content_block_delta", {"index": 3, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_stop", {"index": 3}),
        (
            "message_delta",
            {"delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 89}},
        ),
        ("message_stop", {}),
    ]
    assert read_all(AnswerReader(), events) == [
        Chunk(text="Checking."),
        calls(ToolCallDelta(0, "toolu_1", "get_weather", "")),
        calls(ToolCallDelta(0, arguments='{"city": "Ro')),
        calls(ToolCallDelta(0, arguments='me"}')),
        calls(ToolCallDelta(1, "toolu_2", "get_time", "")),
        calls(ToolCallDelta(1, arguments="{}")),
        Chunk(usage=Usage(25, 89), finish_reason="tool_calls"),
    ]


@pytest.mark.parametrize("structured", [None, TOOL_NAME])
def test_a_whole_input_in_the_opening_block_is_read_once(structured: str | None) -> None:
    """A proxy may send the input whole in `content_block_start`: a client's call has it as its arguments, the
    structured-output tool as the answer's text."""
    name = structured or "get_weather"
    block = {"type": "tool_use", "id": "toolu_9", "name": name, "input": {"city": "Rome"}}
    events = [
        ("message_start", {"message": {"usage": {"input_tokens": 4, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": block}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 6}}),
        ("message_stop", {}),
    ]
    read = read_all(AnswerReader(structured), events)
    if structured is None:
        assert read == [
            calls(ToolCallDelta(0, "toolu_9", "get_weather", '{"city":"Rome"}')),  # and no "{}" at the block's stop
            Chunk(usage=Usage(4, 6), finish_reason="tool_calls"),
        ]
    else:
        assert read == [Chunk(text='{"city":"Rome"}'), Chunk(usage=Usage(4, 6), finish_reason="stop")]


async def test_the_fake_answers_a_whole_message_with_tool_use_blocks() -> None:
    async with FakeProvider("anthropic") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        fake.script(
            Script(text="Here.", tool_calls=({"name": "get_time", "arguments": {"tz": "UTC"}, "id": "toolu_3"},))
        )
        answer = (await client.post("/v1/messages", json={"model": "claude-x", "messages": []})).json()
    assert answer["stop_reason"] == "tool_use"
    assert answer["content"] == [
        {"type": "text", "text": "Here."},
        {"type": "tool_use", "id": "toolu_3", "name": "get_time", "input": {"tz": "UTC"}},
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_reason_not_yet_documented", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reason_is_the_finish_reason_in_openai_words(stop_reason: str | None, finish: str) -> None:
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": {"usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "x"}}),
        ("content_block_stop", {"index": 0}),
    ]
    if stop_reason == "tool_use":
        block = {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}
        events += [("content_block_start", {"index": 1, "content_block": block}), ("content_block_stop", {"index": 1})]
    events += [
        ("message_delta", {"delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 2}}),
        ("message_stop", {}),
    ]
    assert read_all(AnswerReader(), events)[-1] == Chunk(usage=Usage(3, 2), finish_reason=finish)


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


# Tool results ----------------------------------------------------------------------------------------------------


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


# Images ----------------------------------------------------------------------------------------------------------


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


# JSON modes and structured output --------------------------------------------------------------------------------

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
        Chunk(usage=usage_of(fake, 3), finish_reason="stop"),  # stop_reason tool_use, but the tool is the answer
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
        Chunk(usage=usage_of(fake, 3), finish_reason="stop"),
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


# Parameters ------------------------------------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("params", "text", "finish"),
    [
        ({"stop": "END"}, ["one", " two", " "], "stop"),  # stop_reason stop_sequence
        ({"max_tokens": 2}, ["one", " two"], "length"),  # stop_reason max_tokens
    ],
)
async def test_a_cut_answer_has_its_finish_reason(
    anthropic: tuple[AnthropicProvider, FakeProvider], params: dict[str, Any], text: list[str], finish: str
) -> None:
    provider, fake = anthropic
    fake.script(Script(text="one two END three"))
    chunks = await collect(
        provider, ProviderRequest(model="claude-x", messages=(Message("user", "hi"),), params=params)
    )
    assert chunks == [
        *(Chunk(text=piece) for piece in text),
        Chunk(usage=usage_of(fake, len(text)), finish_reason=finish),
    ]


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


# Through a real gateway ------------------------------------------------------------------------------------------

TOOLS_BODY = {
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ],
    "tool_choice": "required",
}
GATEWAY_CALLS = (
    {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_p"},
    {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "toolu_o"},
)


def openai_call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_anthropic_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("anthropic") as fake:
        config = f"providers:\n  a: {{type: anthropic, api_key: k, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        fake.script(Script(tool_calls=GATEWAY_CALLS, argument_chunks=2))
        body = {"model": "a/claude-x", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        sent = fake.requests[0].body
        assert sent["tools"] == [
            {"name": "get_weather", "input_schema": TOOLS_BODY["tools"][0]["function"]["parameters"]}
        ]
        assert sent["tool_choice"] == {"type": "any"}
    if not stream:
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        assert choice["message"] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [openai_call("toolu_p", '{"city":"Paris"}'), openai_call("toolu_o", '{"city":"Oslo"}')],
        }
        return
    events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    choices = [(e["choices"][0]["delta"], e["choices"][0]["finish_reason"]) for e in events if e["choices"]]
    assert choices == [
        ({"role": "assistant", "content": ""}, None),
        ({"tool_calls": [{"index": 0, **openai_call("toolu_p", "")}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, None),
        ({"tool_calls": [{"index": 1, **openai_call("toolu_o", "")}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": '{"city"'}}]}, None),
        ({"tool_calls": [{"index": 1, "function": {"arguments": ':"Oslo"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert response.text.rstrip().endswith("data: [DONE]")


async def logged(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """A pass-through's record, once it is in the log (it is written when the run has finished)."""
    for _ in range(250):
        found = await client.get(f"/v1/requests/{request_id}")
        if found.status_code != 404:
            return dict(found.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {request_id} never reached the log")


async def test_an_image_type_anthropic_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with FakeProvider("anthropic") as claude, FakeProvider("openai", text="A cat.") as backup:
        config = f"""
providers:
  claude: {{type: anthropic, api_key: k, base_url: "{claude.base_url}"}}
  backup: {{type: openai, api_key: k, base_url: "{backup.base_url}"}}
workflows:
  vision:
    chain:
      - {{provider: claude, model: claude-x}}
      - {{provider: backup, model: gpt-x}}
"""
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        image = {"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PIXEL}"}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={"model": "vision", "messages": messages})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "A cat."
            record = await logged(client, response.headers["x-request-id"])
        assert claude.requests == []  # refused before anything was sent
        attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
        assert attempts == [("claude", "failed", "unsupported_by_provider"), ("backup", "succeeded", None)]
