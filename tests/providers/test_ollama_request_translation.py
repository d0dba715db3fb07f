"""What the Ollama adapter sends: the `/api/chat` request it makes of each part of the canonical request (tools and
tool choice, tool results, images, JSON modes, parameters) and its `/api/embed` request, as the wire-faithful fake
received them; what Ollama cannot do is refused before anything is sent (docs/translation.md, "Ollama")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sluice.providers.base import Chunk, EmbeddingRequest, Message, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, Unsupported
from sluice.providers.messages import (
    ImagePart,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from sluice.providers.ollama import OllamaProvider
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols import fake_vector
from tests.providers.adapters import PIXEL, SCHEMA, adapter, collect, fake_usage, generated_ids

WEATHER_PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = Tool(name="get_weather", description="The weather in a city.", parameters=WEATHER_PARAMETERS)
TIME = Tool(name="get_time")
ASK = ProviderRequest(model="qwen3", messages=(Message("user", "Weather in Paris?"),), tools=(WEATHER, TIME))
TOOLS_SENT = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER_PARAMETERS},
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]


@pytest.fixture
async def ollama() -> AsyncIterator[tuple[OllamaProvider, FakeProvider]]:
    """The Ollama adapter aimed at a fresh fake."""
    async with (
        FakeProvider("ollama") as fake,
        adapter(fake, OllamaProvider, type="ollama", keep_alive="5m") as provider,
    ):
        yield provider, fake


# Tools ---------------------------------------------------------------------------------------------------------------


async def test_tools_are_sent_and_a_streamed_call_is_one_delta(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    fake.script(Script(tool_calls=({"name": "get_weather", "arguments": {"city": "Paris"}},)))
    chunks = await collect(provider, replace(ASK, tool_choice=ToolChoice("auto"), system="Be brief."))
    sent = fake.requests[0]
    assert sent.path == "/api/chat"
    assert sent.body == {
        "model": "qwen3",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
        "stream": True,
        "tools": TOOLS_SENT,
        "keep_alive": "5m",
    }
    assert generated_ids(chunks) == [
        Chunk(tool_calls=(ToolCallDelta(0, "<id>", "get_weather", '{"city":"Paris"}'),)),
        Chunk(usage=fake_usage(fake, 3), finish_reason="tool_calls"),
    ]


@pytest.mark.parametrize("mode", ["required", "tool"])
async def test_a_tool_choice_ollama_cannot_force_is_unsupported(
    ollama: tuple[OllamaProvider, FakeProvider], mode: str
) -> None:
    provider, fake = ollama
    choice = ToolChoice(mode, "get_time" if mode == "tool" else None)  # type: ignore[arg-type]
    with pytest.raises(Unsupported, match="cannot be made to call a tool") as caught:
        await collect(provider, replace(ASK, tool_choice=choice))
    assert caught.value.code == "unsupported_by_provider" and not caught.value.fail_fast
    assert fake.requests == []


async def test_tool_choice_none_leaves_the_tools_out(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    await collect(provider, replace(ASK, tool_choice=ToolChoice("none")))
    assert "tools" not in fake.requests[0].body


# Tool results --------------------------------------------------------------------------------------------------------


async def test_a_tool_result_turn_is_assistant_tool_calls_and_tool_messages(
    ollama: tuple[OllamaProvider, FakeProvider],
) -> None:
    provider, fake = ollama
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
        Message("tool", '{"temp": 21}', tool_call_id="call_a"),
        Message("tool", (TextPart("4 degrees"),), tool_call_id="call_b", name="get_weather"),
        Message("assistant", "", tool_calls=(ToolCall("call_c", "get_time", ""),)),
        Message("tool", "12:00", tool_call_id="call_c"),
        Message("user", "Thanks!"),
    )
    await collect(provider, ProviderRequest(model="qwen3", messages=conversation))
    assert fake.requests[0].body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {"type": "function", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}},
                {"type": "function", "function": {"index": 1, "name": "get_weather", "arguments": {"city": "Oslo"}}},
            ],
        },
        {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"},
        {"role": "tool", "content": "4 degrees", "tool_name": "get_weather"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"index": 0, "name": "get_time", "arguments": {}}}],
        },
        {"role": "tool", "content": "12:00", "tool_name": "get_time"},
        {"role": "user", "content": "Thanks!"},
    ]


async def test_a_replayed_call_whose_arguments_are_not_an_object_is_unsupported(
    ollama: tuple[OllamaProvider, FakeProvider],
) -> None:
    provider, fake = ollama
    conversation = (
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("call_a", "get_weather", "[1, 2]"),)),
        Message("tool", "?", tool_call_id="call_a"),
    )
    with pytest.raises(Unsupported, match="not a JSON object"):
        await collect(provider, ProviderRequest(model="qwen3", messages=conversation))
    assert fake.requests == []


# Images --------------------------------------------------------------------------------------------------------------


async def test_an_inline_image_is_base64_in_images(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    content = (TextPart("What is "), ImagePart(f"data:image/png;base64,{PIXEL}"), TextPart("this?"))
    await collect(provider, ProviderRequest(model="llava", messages=(Message("user", content),)))
    assert fake.requests[0].body["messages"] == [{"role": "user", "content": "What is this?", "images": [PIXEL]}]


async def test_an_image_by_link_is_unsupported_before_anything_is_sent(
    ollama: tuple[OllamaProvider, FakeProvider],
) -> None:
    provider, fake = ollama
    content = (TextPart("What is this?"), ImagePart("https://example.com/cat.png"))
    with pytest.raises(Unsupported, match=r"messages\[0\].*inline"):
        await collect(provider, ProviderRequest(model="llava", messages=(Message("user", content),)))
    assert fake.requests == []


# JSON modes and parameters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "format_"),
    [
        (ResponseFormat("json_object"), "json"),
        (ResponseFormat("json_schema", SCHEMA, "sum"), SCHEMA),
        (ResponseFormat("json_schema"), "json"),
    ],
)
async def test_json_modes_are_format(
    ollama: tuple[OllamaProvider, FakeProvider], wanted: ResponseFormat, format_: Any
) -> None:
    provider, fake = ollama
    request = ProviderRequest(model="qwen3", messages=(Message("user", "1+1?"),), response_format=wanted)
    await collect(provider, request)
    assert fake.requests[0].body["format"] == format_


async def test_a_workflow_schema_still_goes_the_native_way(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    _, request = prepare(ProviderRequest(model="qwen3", messages=(Message("user", "1+1?"),), schema=SCHEMA), "format")
    await collect(provider, request)
    assert fake.requests[0].body["format"] == SCHEMA


async def test_parameters_are_options(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    params = {"max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": "END", "seed": 7, "num_ctx": 8192}
    hi = (Message("user", "hi"),)
    request = ProviderRequest(model="qwen3", messages=hi, params=params, passthrough={"user": "u"})
    await collect(provider, request)
    body = fake.requests[0].body
    assert body["options"] == {
        "num_predict": 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "num_ctx": 8192,  # a chain entry's own option, in Ollama's name, goes as written
    }
    assert "user" not in body  # passthrough fields are OpenAI's: not sent


# Embeddings ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dimensions", [None, 32])
async def test_embeddings_are_api_embed_in_input_order(
    ollama: tuple[OllamaProvider, FakeProvider], dimensions: int | None
) -> None:
    provider, fake = ollama
    inputs = ("first text here", "second", "first text here")
    result = await provider.embed(EmbeddingRequest(model="embeddinggemma", inputs=inputs, dimensions=dimensions))
    sent = fake.requests[0]
    assert sent.path == "/api/embed"
    extra = {"dimensions": dimensions} if dimensions else {}
    assert sent.body == {"model": "embeddinggemma", "input": list(inputs), **extra, "keep_alive": "5m"}
    assert result.vectors == tuple(tuple(fake_vector(text, dimensions or 768)) for text in inputs)
    assert result.usage == Usage(input_tokens=7)  # the fake's prompt_eval_count: the words


async def test_an_embeddings_failure_is_a_provider_error(ollama: tuple[OllamaProvider, FakeProvider]) -> None:
    provider, fake = ollama
    fake.script(Script(status=404))
    with pytest.raises(ProviderError, match="404"):
        await provider.embed(EmbeddingRequest(model="missing", inputs=("x",)))
