"""What the Ollama adapter reads: the chunks it makes of Ollama's NDJSON lines (text first, then each call whole in
one delta, numbered across the lines and the done line, its id kept or made up) and `done_reason` as the finish
reason (docs/translation.md, "Ollama")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from sluice.providers.base import Chunk, Usage
from sluice.providers.messages import ToolCallDelta
from sluice.providers.ollama import AnswerReader, OllamaProvider
from sluice.testing import FakeProvider, Script
from tests.providers.adapters import adapter, collect, fake_usage, generated_ids
from tests.providers.test_ollama_request_translation import ASK  # the request offering get_weather and get_time


@pytest.fixture
async def ollama() -> AsyncIterator[tuple[OllamaProvider, FakeProvider]]:
    """The Ollama adapter aimed at a fresh fake."""
    async with (
        FakeProvider("ollama") as fake,
        adapter(fake, OllamaProvider, type="ollama", keep_alive="5m") as provider,
    ):
        yield provider, fake


# Calls in the stream -------------------------------------------------------------------------------------------------


async def test_a_call_keeps_the_id_ollama_gave_and_text_before_it_streams_first(
    ollama: tuple[OllamaProvider, FakeProvider],
) -> None:
    provider, fake = ollama
    fake.script(Script(text="Let me check.", tool_calls=({"name": "get_time", "arguments": {}, "id": "call_x1"},)))
    chunks = await collect(provider, ASK)
    assert chunks == [
        Chunk(text="Let"),
        Chunk(text=" me"),
        Chunk(text=" check."),
        Chunk(tool_calls=(ToolCallDelta(0, "call_x1", "get_time", "{}"),)),
        Chunk(usage=fake_usage(fake, 5), finish_reason="tool_calls"),  # the fake counts 3 words, "{" and "}"
    ]


async def test_parallel_calls_come_in_one_chunk_numbered_in_order(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    calls = (
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
        {"name": "get_time", "arguments": {}},
    )
    fake.script(Script(tool_calls=calls))
    assert generated_ids(await collect(provider, ASK)) == [
        Chunk(
            tool_calls=(
                ToolCallDelta(0, "<id>", "get_weather", '{"city":"Paris"}'),
                ToolCallDelta(1, "<id>", "get_weather", '{"city":"Oslo"}'),
                ToolCallDelta(2, "<id>", "get_time", "{}"),
            )
        ),
        Chunk(usage=fake_usage(fake, 8), finish_reason="tool_calls"),
    ]


def test_calls_on_several_lines_and_on_the_done_line_are_numbered_across_them() -> None:
    reader = AnswerReader("o")
    first_call = {"function": {"name": "a", "arguments": {}}}
    first = {"message": {"role": "assistant", "content": "", "tool_calls": [first_call]}, "done": False}
    last_call = {"id": "c2", "function": {"name": "b", "arguments": {"x": 1}}}
    last = {
        "message": {"role": "assistant", "content": "", "tool_calls": [last_call]},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 10,
        "eval_count": 4,
    }
    chunks = generated_ids(list(reader.read(first))) + list(reader.read(last))
    assert reader.finished
    assert chunks == [
        Chunk(tool_calls=(ToolCallDelta(0, "<id>", "a", "{}"),)),
        Chunk(tool_calls=(ToolCallDelta(1, "c2", "b", '{"x":1}'),)),
        Chunk(usage=Usage(10, 4), finish_reason="tool_calls"),
    ]


async def test_a_request_nobody_streams_still_streams_and_the_calls_come_the_same(
    ollama: tuple[OllamaProvider, FakeProvider],
) -> None:
    provider, fake = ollama
    fake.script(Script(tool_calls=({"name": "get_time", "arguments": {}, "id": "call_x2"},)))
    chunks = await collect(provider, replace(ASK, stream=False))
    assert fake.requests[0].body["stream"] is True
    assert chunks[0] == Chunk(tool_calls=(ToolCallDelta(0, "call_x2", "get_time", "{}"),))
    assert chunks[-1].finish_reason == "tool_calls"


async def test_the_fake_answers_a_whole_chat_with_the_tool_calls() -> None:
    async with FakeProvider("ollama") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        fake.script(Script(text="Here.", tool_calls=({"name": "get_time", "arguments": {"tz": "UTC"}},)))
        answer = (await client.post("/api/chat", json={"model": "m", "messages": [], "stream": False})).json()
    assert answer["done"] is True and answer["done_reason"] == "stop"
    assert answer["message"] == {
        "role": "assistant",
        "content": "Here.",
        "tool_calls": [{"function": {"index": 0, "name": "get_time", "arguments": {"tz": "UTC"}}}],
    }


# The done line -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("done_reason", "finish"), [("stop", "stop"), ("length", "length"), (None, "stop")])
def test_done_reason_is_the_finish_reason(done_reason: str | None, finish: str) -> None:
    line = {"message": {"role": "assistant", "content": "end"}, "done": True, "eval_count": 2}
    if done_reason:
        line["done_reason"] = done_reason
    assert list(AnswerReader("o").read(line)) == [Chunk(text="end", usage=Usage(0, 2), finish_reason=finish)]
