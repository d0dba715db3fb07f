"""What the Gemini adapter reads: the chunks it makes of Gemini's stream (text first, then each call whole in one
delta, numbered across the answer, its id kept or made up), of a whole answer in one response, and the finish
reasons in OpenAI's words or the errors they mean (docs/translation.md, "Google Gemini")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from sluice.providers.base import Chunk, Usage
from sluice.providers.errors import InvalidRequest, ProviderError
from sluice.providers.gemini import AnswerReader, GeminiProvider
from sluice.providers.messages import ToolCallDelta
from sluice.testing import FakeProvider, Script
from tests.providers.adapters import CALL_ID, adapter, collect, fake_usage, generated_ids
from tests.providers.test_gemini_request_translation import ASK  # the request offering get_weather and get_time


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiProvider, FakeProvider]]:
    """The Gemini adapter aimed at a fresh fake."""
    async with FakeProvider("gemini") as fake, adapter(fake, GeminiProvider, type="gemini", api_key="k") as provider:
        yield provider, fake


# Calls in the stream -------------------------------------------------------------------------------------------------


async def test_a_call_keeps_the_id_gemini_gave_and_text_before_it_streams_first(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    fake.script(Script(text="Let me check.", tool_calls=({"name": "get_time", "arguments": {}, "id": "fc-7"},)))
    chunks = await collect(provider, ASK)
    assert "toolConfig" not in fake.requests[0].body  # no tool_choice: Gemini's default (AUTO)
    assert chunks == [
        Chunk(text="Let"),
        Chunk(text=" me"),
        Chunk(text=" check."),
        Chunk(tool_calls=(ToolCallDelta(0, "fc-7", "get_time", "{}"),)),
        Chunk(usage=fake_usage(fake, 5), finish_reason="tool_calls"),  # the fake counts 3 words, "{" and "}"
    ]


async def test_parallel_calls_come_in_one_chunk_numbered_in_order(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    calls = (
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}},
        {"name": "get_time", "arguments": {}},
    )
    fake.script(Script(tool_calls=calls))
    chunks = generated_ids(await collect(provider, ASK))
    assert chunks == [
        Chunk(
            tool_calls=(
                ToolCallDelta(0, "<id>", "get_weather", '{"city":"Paris"}'),
                ToolCallDelta(1, "<id>", "get_weather", '{"city":"Oslo","unit":"c"}'),
                ToolCallDelta(2, "<id>", "get_time", "{}"),
            )
        ),
        Chunk(usage=fake_usage(fake, 8), finish_reason="tool_calls"),
    ]


async def test_a_request_nobody_streams_still_streams_and_the_calls_come_the_same(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    fake.script(Script(tool_calls=({"name": "get_time", "arguments": {}, "id": "fc-1"},)))
    chunks = await collect(provider, replace(ASK, stream=False))
    assert fake.requests[0].path.endswith(":streamGenerateContent")
    assert chunks[0] == Chunk(tool_calls=(ToolCallDelta(0, "fc-1", "get_time", "{}"),))
    assert chunks[-1].finish_reason == "tool_calls"


class _AnyString:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_STRING: Any = _AnyString()


async def test_the_fake_answers_generate_content_with_the_call_parts() -> None:
    async with FakeProvider("gemini") as fake, httpx.AsyncClient(base_url=fake.url) as client:
        fake.script(Script(text="Here.", tool_calls=({"name": "get_time", "arguments": {"tz": "UTC"}, "id": "fc-2"},)))
        answer = (await client.post("/v1beta/models/m:generateContent", json={"contents": []})).json()
    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [
        {"text": "Here."},
        {"functionCall": {"id": "fc-2", "name": "get_time", "args": {"tz": "UTC"}}, "thoughtSignature": ANY_STRING},
    ]


# A whole answer, finish reasons, refusals ----------------------------------------------------------------------------


def test_a_whole_answer_in_one_response_reads_as_text_calls_then_the_end() -> None:
    """What `generateContent`, or a last stream chunk, sends: text, thoughts and calls with the finish reason."""
    reader = AnswerReader("g")
    payload = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking about it", "thought": True},
                        {"text": "Checking."},
                        {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "c2ln"},
                        {"functionCall": {"id": "fc-9", "name": "get_weather", "args": {"city": "Rome"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19},
    }
    read = list(reader.read(payload))
    assert reader.finished
    assert read[0] == Chunk(text="Checking.")
    assert read[1].tool_calls[0].name == "get_time" and CALL_ID.fullmatch(read[1].tool_calls[0].id or "")
    assert read[1].tool_calls[1] == ToolCallDelta(1, "fc-9", "get_weather", '{"city":"Rome"}')
    assert read[2] == Chunk(usage=Usage(12, 7), finish_reason="tool_calls")
    assert len(read) == 3


@pytest.mark.parametrize(
    ("finish", "outcome"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("OTHER", "stop"),
        ("SAFETY", InvalidRequest),
        ("RECITATION", InvalidRequest),
        ("PROHIBITED_CONTENT", InvalidRequest),
        ("MALFORMED_FUNCTION_CALL", ProviderError),
    ],
)
def test_finish_reasons_in_openai_words_or_the_error_they_mean(finish: str, outcome: Any) -> None:
    payload = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish}]}
    if isinstance(outcome, str):
        assert list(AnswerReader("g").read(payload))[-1].finish_reason == outcome
        return
    with pytest.raises(outcome) as caught:
        list(AnswerReader("g").read(payload))
    assert finish in str(caught.value)
    if finish == "MALFORMED_FUNCTION_CALL":  # another attempt may do better: not fail-fast
        assert not caught.value.fail_fast and caught.value.retryable


def test_a_blocked_prompt_fails_fast() -> None:
    with pytest.raises(InvalidRequest, match="blockReason SAFETY"):
        list(AnswerReader("g").read({"promptFeedback": {"blockReason": "SAFETY"}}))
