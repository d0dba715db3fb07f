"""What the Anthropic adapter reads: the chunks it makes of the Messages stream (text, thinking, each call's opening
delta then its arguments as split upstream, numbered across the answer), the events `AnswerReader` reads as the API
and proxies send them, usage with the prompt-cache tokens, and `stop_reason` as the finish reason in OpenAI's words
(docs/translation.md, "Anthropic Messages")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from sluice.providers.anthropic import AnswerReader, AnthropicProvider
from sluice.providers.base import Chunk, Message, ProviderRequest, Usage
from sluice.providers.messages import ThinkingDelta, ToolCallDelta
from sluice.structured.native import TOOL_NAME
from sluice.testing import FakeProvider, Script
from tests.providers.adapters import adapter, collect, fake_usage
from tests.providers.test_anthropic_request_translation import ASK, TOOLS_SENT, WEATHER, calls


@pytest.fixture
async def anthropic() -> AsyncIterator[tuple[AnthropicProvider, FakeProvider]]:
    """The Anthropic adapter aimed at a fresh fake."""
    async with (
        FakeProvider("anthropic") as fake,
        adapter(fake, AnthropicProvider, type="anthropic", api_key="k") as provider,
    ):
        yield provider, fake


def read_all(reader: AnswerReader, events: list[tuple[str, dict[str, Any]]]) -> list[Chunk]:
    """The chunks `reader` makes of `events`, each a (type, payload) pair as the stream names them."""
    return [chunk for kind, payload in events if (chunk := reader.read(kind, {"type": kind, **payload})) is not None]


# Calls in the stream -------------------------------------------------------------------------------------------------


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
        Chunk(usage=fake_usage(fake, 3), finish_reason="tool_calls"),
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
        Chunk(usage=fake_usage(fake, 6), finish_reason="tool_calls"),  # 3 words, one piece per call
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
        Chunk(usage=fake_usage(fake, 1), finish_reason="tool_calls"),  # 0 pieces: message_start's count stands
    ]


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


# The events AnswerReader reads ---------------------------------------------------------------------------------------


def test_a_real_stream_reads_as_thinking_then_text_then_calls() -> None:
    """Events as the API streams them: a thinking block (its text, then its signature), text, a call whose input
    begins with an empty `partial_json`, a call without arguments (only an empty `partial_json`)."""
    events: list[tuple[str, dict[str, Any]]] = [
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
        Chunk(thinking=(ThinkingDelta(0, text="Rome, so"),)),
        Chunk(thinking=(ThinkingDelta(0, signature="EqQB"),)),
        Chunk(text="Checking."),
        calls(ToolCallDelta(0, "toolu_1", "get_weather", "")),
        calls(ToolCallDelta(0, arguments='{"city": "Ro')),
        calls(ToolCallDelta(0, arguments='me"}')),
        calls(ToolCallDelta(1, "toolu_2", "get_time", "")),
        calls(ToolCallDelta(1, arguments="{}")),
        Chunk(usage=Usage(25, 89), finish_reason="tool_calls"),
    ]


def test_prompt_cache_tokens_count_as_input_and_the_read_ones_as_cached() -> None:
    """Anthropic's `input_tokens` leaves out the cache: read and written tokens are input too; `message_delta`'s
    counts are cumulative and replace `message_start`'s."""
    start_usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 2000,
        "output_tokens": 1,
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": {"usage": start_usage}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}}),
        ("message_stop", {}),
    ]
    assert read_all(AnswerReader(), events)[-1] == Chunk(
        usage=Usage(2312, 7, cached_input_tokens=2000, cache_write_tokens=300), finish_reason="stop"
    )
    events[4] = (
        "message_delta",
        {"delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 15, "output_tokens": 9}},
    )
    assert read_all(AnswerReader(), events)[-1].usage == Usage(
        2315, 9, cached_input_tokens=2000, cache_write_tokens=300
    )


@pytest.mark.parametrize("structured", [None, TOOL_NAME])
def test_a_whole_input_in_the_opening_block_is_read_once(structured: str | None) -> None:
    """A proxy may send the input whole in `content_block_start`: a client's call has it as its arguments, the
    structured-output tool as the answer's text."""
    name = structured or "get_weather"
    block = {"type": "tool_use", "id": "toolu_9", "name": name, "input": {"city": "Rome"}}
    events: list[tuple[str, dict[str, Any]]] = [
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


# Stop reasons --------------------------------------------------------------------------------------------------------


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
    ("params", "text", "finish", "sequence"),
    [
        ({"stop": "END"}, ["one", " two", " "], "stop", "END"),  # stop_reason stop_sequence, and which one
        ({"max_tokens": 2}, ["one", " two"], "length", None),  # stop_reason max_tokens
    ],
)
async def test_a_cut_answer_has_its_finish_reason(
    anthropic: tuple[AnthropicProvider, FakeProvider],
    params: dict[str, Any],
    text: list[str],
    finish: str,
    sequence: str | None,
) -> None:
    provider, fake = anthropic
    fake.script(Script(text="one two END three"))
    chunks = await collect(
        provider, ProviderRequest(model="claude-x", messages=(Message("user", "hi"),), params=params)
    )
    assert chunks == [
        *(Chunk(text=piece) for piece in text),
        Chunk(usage=fake_usage(fake, len(text)), finish_reason=finish, stop_sequence=sequence),
    ]
