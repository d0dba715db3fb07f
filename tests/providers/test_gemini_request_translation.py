"""What the Gemini adapter sends: the `GenerateContentRequest` it makes of each part of the canonical request (tools
and tool choice, tool results, images, JSON modes, parameters) and its `batchEmbedContents` request, as the
wire-faithful fake received them; what Gemini cannot take is refused before anything is sent (docs/translation.md,
"Google Gemini")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sluice.providers.base import Chunk, EmbeddingRequest, Message, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, Unsupported
from sluice.providers.gemini import SKIP_SIGNATURE, GeminiProvider
from sluice.providers.messages import (
    ImagePart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols import fake_vector
from tests.providers.adapters import PIXEL, SCHEMA, adapter, collect, fake_usage, generated_ids

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


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[GeminiProvider, FakeProvider]]:
    """The Gemini adapter aimed at a fresh fake."""
    async with FakeProvider("gemini") as fake, adapter(fake, GeminiProvider, type="gemini", api_key="k") as provider:
        yield provider, fake


# Tools ---------------------------------------------------------------------------------------------------------------


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
        Chunk(usage=fake_usage(fake, 3), finish_reason="tool_calls"),
    ]


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


# Tool results --------------------------------------------------------------------------------------------------------


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


# Images --------------------------------------------------------------------------------------------------------------


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


# JSON modes and parameters -------------------------------------------------------------------------------------------


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


# Embeddings ----------------------------------------------------------------------------------------------------------


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
