"""The Gemini adapter translates the canonical request and answer exactly, against the wire-faithful fake:
the request body it sends, the chunks it yields, its embeddings, and through a real gateway the OpenAI-shaped answer
of `/v1/chat/completions` (docs/translation.md, "Google Gemini")."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.providers.base import Chunk, EmbeddingRequest, Message, ProviderRequest, Usage
from sluice.providers.errors import InvalidRequest, ProviderError, Unsupported
from sluice.providers.gemini import SKIP_SIGNATURE, AnswerReader, GeminiProvider
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
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols import fake_vector
from sluice.workflows.loader import build_catalog
from tests.conftest import StartGateway, write_config

WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f", None]}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "unit": {"nullable": True, "type": "STRING", "enum": ["c", "f"]}},
        "propertyOrdering": ["city", "unit"],
        "required": ["city"],
    },
}
TIME = Tool(name="get_time", parameters={"type": "object", "properties": {}})
ASK = ProviderRequest(model="gemini-x", messages=(Message("user", "Weather in Paris?"),), tools=(WEATHER, TIME))
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
CALL_ID = re.compile(r"call_[0-9a-f]{24}")


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiProvider, FakeProvider]]:
    async with FakeProvider("gemini") as fake:
        record = {"type": "gemini", "api_key": "k", "base_url": fake.base_url}
        catalog = build_catalog({"providers": {"g": record}, "workflows": {}}, {})
        pool = ProviderPool(catalog)
        try:
            provider = pool.get("g")
            assert isinstance(provider, GeminiProvider)
            yield provider, fake
        finally:
            await pool.aclose()


async def collect(provider: GeminiProvider, request: ProviderRequest) -> list[Chunk]:
    return [chunk async for chunk in provider.stream(request)]


def generated_ids(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with each generated call id (unique, so random) checked and replaced by `<id>`."""
    out = []
    for chunk in chunks:
        calls = []
        for call in chunk.tool_calls:
            assert call.id is not None and CALL_ID.fullmatch(call.id), call.id
            calls.append(replace(call, id="<id>"))
        out.append(replace(chunk, tool_calls=tuple(calls)))
    return out


def usage_of(fake: FakeProvider, units: int) -> Usage:
    return Usage(len(orjson.dumps(fake.requests[-1].body)) // 16, units)


# Tools -----------------------------------------------------------------------------------------------------------


async def test_tools_are_function_declarations_and_a_streamed_call_is_one_delta(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    fake.script(Script(tool_calls=({"name": "get_weather", "arguments": {"city": "Paris"}},)))
    chunks = await collect(provider, replace(ASK, tool_choice=ToolChoice("auto")))
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-x:streamGenerateContent"
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "tools": [{"functionDeclarations": [WEATHER_DECLARATION, {"name": "get_time"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    }
    assert generated_ids(chunks) == [
        Chunk(tool_calls=(ToolCallDelta(0, "<id>", "get_weather", '{"city":"Paris"}'),)),
        Chunk(usage=usage_of(fake, 3), finish_reason="tool_calls"),
    ]


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
        Chunk(usage=usage_of(fake, 5), finish_reason="tool_calls"),  # the fake counts 3 words, "{" and "}"
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
        Chunk(usage=usage_of(fake, 8), finish_reason="tool_calls"),
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


class _AnyString:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_STRING: Any = _AnyString()


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


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "get_time"), {"mode": "ANY", "allowedFunctionNames": ["get_time"]}),
    ],
)
async def test_tool_choice_is_function_calling_config(
    gemini: tuple[GeminiProvider, FakeProvider], choice: ToolChoice, config: dict[str, Any]
) -> None:
    provider, fake = gemini
    await collect(provider, replace(ASK, tool_choice=choice))
    assert fake.requests[0].body["toolConfig"] == {"functionCallingConfig": config}
    assert len(fake.requests[0].body["tools"][0]["functionDeclarations"]) == 2  # none: offered, not callable


# Tool results ----------------------------------------------------------------------------------------------------


async def test_a_tool_result_turn_is_function_responses_in_one_user_turn(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    conversation = (
        Message("user", "Weather in Paris and Oslo?"),
        Message(
            "assistant",
            "Checking both.",
            tool_calls=(
                ToolCall("call_a", "get_weather", '{"city": "Paris"}'),
                ToolCall("call_b", "get_weather", '{"city": "Oslo"}'),
            ),
        ),
        Message("tool", '{"temp": 21, "sky": "clear"}', tool_call_id="call_a"),
        Message("tool", "4 degrees, snow", tool_call_id="call_b", name="get_weather"),
        Message("assistant", "", tool_calls=(ToolCall("call_c", "get_time", ""),)),
        Message("tool", (TextPart("12:00"),), tool_call_id="call_c"),
        Message("user", "Thanks!"),
    )
    await collect(provider, ProviderRequest(model="gemini-x", messages=conversation, system="Be brief."))
    assert fake.requests[0].body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Oslo?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Checking both."},
                    {
                        "functionCall": {"id": "call_a", "name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": SKIP_SIGNATURE,
                    },
                    {"functionCall": {"id": "call_b", "name": "get_weather", "args": {"city": "Oslo"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    result("call_a", "get_weather", {"temp": 21, "sky": "clear"}),
                    result("call_b", "get_weather", {"output": "4 degrees, snow"}),
                ],
            },
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"id": "call_c", "name": "get_time", "args": {}},
                        "thoughtSignature": SKIP_SIGNATURE,
                    },
                ],
            },
            {
                "role": "user",
                "parts": [result("call_c", "get_time", {"output": "12:00"})],
            },
            {"role": "user", "parts": [{"text": "Thanks!"}]},
        ],
    }


def result(call_id: str, name: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"functionResponse": {"id": call_id, "name": name, "response": response}}


async def test_a_replayed_call_whose_arguments_are_not_an_object_is_unsupported(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    conversation = (
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("call_a", "get_weather", '{"city": "Par'),)),
        Message("tool", "?", tool_call_id="call_a"),
    )
    with pytest.raises(Unsupported, match="not a JSON object"):
        await collect(provider, ProviderRequest(model="gemini-x", messages=conversation))
    assert fake.requests == []


# Images ----------------------------------------------------------------------------------------------------------


async def test_an_inline_image_is_inline_data(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    content = (TextPart("What is this?"), ImagePart(f"data:image/png;base64,{PIXEL}", detail="low"))
    await collect(provider, ProviderRequest(model="gemini-x", messages=(Message("user", content),)))
    assert fake.requests[0].body["contents"] == [
        {"role": "user", "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PIXEL}}]}
    ]


async def test_an_image_by_link_is_unsupported_before_anything_is_sent(
    gemini: tuple[GeminiProvider, FakeProvider],
) -> None:
    provider, fake = gemini
    content = (TextPart("What is this?"), ImagePart("https://example.com/cat.png"))
    with pytest.raises(Unsupported, match=r"messages\[0\].*inline") as caught:
        await collect(provider, ProviderRequest(model="gemini-x", messages=(Message("user", content),)))
    assert caught.value.code == "unsupported_by_provider" and not caught.value.fail_fast
    assert fake.requests == []


# JSON modes and parameters ---------------------------------------------------------------------------------------


SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


@pytest.mark.parametrize(
    ("wanted", "config"),
    [
        (ResponseFormat("json_object"), {"responseMimeType": "application/json"}),
        (
            ResponseFormat("json_schema", SCHEMA, "sum"),
            {
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "OBJECT",
                    "properties": {"answer": {"type": "INTEGER"}},
                    "propertyOrdering": ["answer"],
                    "required": ["answer"],
                },
            },
        ),
    ],
)
async def test_json_modes_are_response_mime_type_and_schema(
    gemini: tuple[GeminiProvider, FakeProvider], wanted: ResponseFormat, config: dict[str, Any]
) -> None:
    provider, fake = gemini
    await collect(
        provider, ProviderRequest(model="gemini-x", messages=(Message("user", "1+1?"),), response_format=wanted)
    )
    assert fake.requests[0].body["generationConfig"] == config


async def test_a_workflow_schema_still_goes_the_native_way(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    asked = ProviderRequest(model="gemini-x", messages=(Message("user", "1+1?"),), schema=SCHEMA)
    _, request = prepare(asked, "response_schema")
    await collect(provider, replace(request, params={"temperature": 0}))
    assert fake.requests[0].body["generationConfig"] == {
        "temperature": 0,
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"answer": {"type": "INTEGER"}},
            "propertyOrdering": ["answer"],
            "required": ["answer"],
        },
    }


async def test_parameters_are_generation_config(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    params = {"max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": "END", "seed": 7, "topK": 40}
    await collect(provider, ProviderRequest(model="gemini-x", messages=(Message("user", "hi"),), params=params))
    assert fake.requests[0].body["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.3,
        "topP": 0.9,
        "stopSequences": ["END"],
        "seed": 7,
        "topK": 40,  # a chain entry's own parameter, in Gemini's name, goes as written
    }


async def test_passthrough_fields_are_not_sent(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    request = ProviderRequest(model="gemini-x", messages=(Message("user", "hi"),), passthrough={"user": "u-1"})
    await collect(provider, request)
    assert fake.requests[0].body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# Embeddings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dimensions", [None, 64])
async def test_embeddings_are_batch_embed_contents_in_input_order(
    gemini: tuple[GeminiProvider, FakeProvider], dimensions: int | None
) -> None:
    provider, fake = gemini
    inputs = ("first text", "second text", "first text")
    result = await provider.embed(EmbeddingRequest(model="gemini-embedding-001", inputs=inputs, dimensions=dimensions))
    sent = fake.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "k"
    extra = {"outputDimensionality": dimensions} if dimensions else {}
    assert sent.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", **extra, "content": {"parts": [{"text": text}]}} for text in inputs
        ]
    }
    assert result.vectors == tuple(tuple(fake_vector(text, dimensions or 768)) for text in inputs)
    assert result.usage == Usage()


async def test_an_embeddings_failure_is_a_provider_error(gemini: tuple[GeminiProvider, FakeProvider]) -> None:
    provider, fake = gemini
    fake.script(Script(status=429))
    with pytest.raises(ProviderError, match="429"):
        await provider.embed(EmbeddingRequest(model="models/text-embedding-004", inputs=("x",)))
    assert fake.requests[0].path == "/v1beta/models/text-embedding-004:batchEmbedContents"


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


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_gemini_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("gemini") as fake:
        config = f"providers:\n  g: {{type: gemini, api_key: k, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        calls = (
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "fc-1"},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        )
        fake.script(Script(tool_calls=calls))
        body = {"model": "g/gemini-x", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        sent = fake.requests[0].body
        assert sent.get("toolConfig") == {"functionCallingConfig": {"mode": "ANY"}}, "the tools were not forwarded"
        if not stream:
            choice = response.json()["choices"][0]
            assert choice["finish_reason"] == "tool_calls"
            message = choice["message"]
            second = message["tool_calls"][1]["id"]
            assert CALL_ID.fullmatch(second)
            assert message == {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    openai_call("fc-1", '{"city":"Paris"}'),
                    openai_call(second, '{"city":"Oslo"}'),
                ],
            }
        else:
            events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
            deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
            calls_seen = [call for delta in deltas for call in delta.get("tool_calls", ())]
            assert calls_seen[0] == {"index": 0, **openai_call("fc-1", '{"city":"Paris"}')}
            assert calls_seen[1]["index"] == 1 and calls_seen[1]["function"]["arguments"] == '{"city":"Oslo"}'
            assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"


def openai_call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


async def logged(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """A pass-through's record, once it is in the log (it is written when the run has finished)."""
    for _ in range(250):
        found = await client.get(f"/v1/requests/{request_id}")
        if found.status_code != 404:
            return dict(found.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {request_id} never reached the log")


async def test_an_image_link_gemini_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with FakeProvider("gemini") as gem, FakeProvider("openai", text="A cat.") as backup:
        config = f"""
providers:
  gem: {{type: gemini, api_key: k, base_url: "{gem.base_url}"}}
  backup: {{type: openai, api_key: k, base_url: "{backup.base_url}"}}
workflows:
  vision:
    chain:
      - {{provider: gem, model: gemini-x}}
      - {{provider: backup, model: gpt-x}}
"""
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, image]}]
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={"model": "vision", "messages": messages})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == "A cat."
            record = await logged(client, response.headers["x-request-id"])
        assert gem.requests == []  # refused before anything was sent
        attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
        assert attempts == [("gem", "failed", "unsupported_by_provider"), ("backup", "succeeded", None)]
