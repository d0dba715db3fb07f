"""The OpenAI and OpenAI-compatible adapters translate the canonical request and answer exactly, against the
wire-faithful fake: the request body they send, the chunks they yield, their embeddings, and through a real gateway
the `/v1/chat/completions` answer, which must be what the upstream itself streamed (docs/translation.md, "OpenAI and
OpenAI-compatible servers")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.providers.base import Chunk, EmbeddingRequest, Message, ProviderRequest, Usage
from sluice.providers.errors import ProviderError, Unsupported
from sluice.providers.messages import (
    ImagePart,
    ResponseFormat,
    TextPart,
    ThinkingDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from sluice.providers.openai import OpenAIProvider, call_pieces, reasoning_of, usage_of
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols import fake_vector
from tests.conftest import StartGateway, write_config
from tests.providers.adapters import PIXEL, SCHEMA, adapter, collect, fake_usage, sse_events, tools_body

WEATHER = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)
WEATHER_SPEC = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
TIME = Tool(name="get_time", parameters={"type": "object", "properties": {}})
TIME_SPEC = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ASK = ProviderRequest(model="gpt-x", messages=(Message("user", "Weather in Paris?"),), tools=(WEATHER, TIME))
PARIS = {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_1"}


def openai_adapter(
    fake: FakeProvider, kind: str = "openai", **options: Any
) -> AbstractAsyncContextManager[OpenAIProvider]:
    """The adapter with one channel event per provider event (`merge_reads: false`), so chunks are exact."""
    return adapter(fake, OpenAIProvider, type=kind, api_key="k", merge_reads=False, **options)


@pytest.fixture
async def openai() -> AsyncIterator[tuple[OpenAIProvider, FakeProvider]]:
    """The OpenAI adapter aimed at a fresh fake."""
    async with FakeProvider("openai") as fake, openai_adapter(fake) as provider:
        yield provider, fake


def argument_pieces(script: Script, call: int = 0) -> tuple[str, ...]:
    """How the fake splits a call's arguments (checked: more than one piece, which join to the arguments)."""
    fake_call = script.answer("").calls[call]
    assert len(fake_call.pieces) > 1 and "".join(fake_call.pieces) == fake_call.arguments
    return fake_call.pieces


# Tools -----------------------------------------------------------------------------------------------------------


async def test_tools_non_streamed_are_function_tools_and_the_calls_come_in_one_chunk(
    openai: tuple[OpenAIProvider, FakeProvider],
) -> None:
    provider, fake = openai
    fake.script(Script(tool_calls=(PARIS,)))
    chunks = await collect(provider, replace(ASK, stream=False, tool_choice=ToolChoice("required")))
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].body == {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "stream": False,
        "tools": [WEATHER_SPEC, TIME_SPEC],
        "tool_choice": "required",
    }
    assert chunks == [
        Chunk(
            tool_calls=(ToolCallDelta(0, "call_1", "get_weather", '{"city":"Paris"}'),),
            finish_reason="tool_calls",
            usage=fake_usage(fake, 3),
        )
    ]


async def test_a_streamed_call_is_its_opening_piece_then_its_arguments_as_split_upstream(
    openai: tuple[OpenAIProvider, FakeProvider],
) -> None:
    provider, fake = openai
    script = Script(tool_calls=(PARIS,), argument_chunks=3)
    fake.script(script)
    chunks = await collect(provider, replace(ASK, tool_choice=ToolChoice("tool", "get_weather")))
    body = fake.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    pieces = argument_pieces(script)
    assert chunks == [
        Chunk(tool_calls=(ToolCallDelta(0, "call_1", "get_weather", ""),)),
        *[Chunk(tool_calls=(ToolCallDelta(0, arguments=piece),)) for piece in pieces],
        Chunk(finish_reason="tool_calls"),
        Chunk(usage=fake_usage(fake, 3)),
    ]


async def test_parallel_calls_are_numbered_in_order_after_the_text(
    openai: tuple[OpenAIProvider, FakeProvider],
) -> None:
    provider, fake = openai
    calls = (PARIS, {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_2"})
    script = Script(text="Checking.", tool_calls=calls, argument_chunks=2)
    fake.script(script)
    chunks = await collect(provider, replace(ASK, parallel_tool_calls=True))
    assert fake.requests[0].body["parallel_tool_calls"] is True
    assert "tool_choice" not in fake.requests[0].body
    first_call = next(i for i, chunk in enumerate(chunks) if chunk.tool_calls)
    assert "".join(chunk.text for chunk in chunks[:first_call]) == "Checking."
    deltas = [delta for chunk in chunks for delta in chunk.tool_calls]
    assert deltas == [
        ToolCallDelta(0, "call_1", "get_weather", ""),
        *[ToolCallDelta(0, arguments=piece) for piece in argument_pieces(script, 0)],
        ToolCallDelta(1, "call_2", "get_weather", ""),
        *[ToolCallDelta(1, arguments=piece) for piece in argument_pieces(script, 1)],
    ]
    assert chunks[-2] == Chunk(finish_reason="tool_calls")


async def test_parallel_tool_calls_is_only_sent_with_tools(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    request = ProviderRequest(model="gpt-x", messages=(Message("user", "hi"),), parallel_tool_calls=False)
    await collect(provider, request)
    assert "parallel_tool_calls" not in fake.requests[0].body  # OpenAI refuses it without tools


async def test_a_tool_result_turn_is_sent_as_openai_has_it(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'), ToolCall("call_2", "get_time", "{}"))
    conversation = (
        Message("system", "Be brief."),
        Message("user", "Weather and time in Paris?"),
        Message("assistant", "", tool_calls=calls),
        Message("tool", '{"temp": 21}', tool_call_id="call_1", name="get_weather"),
        Message("tool", (TextPart("12:00"),), tool_call_id="call_2"),
    )
    await collect(provider, ProviderRequest(model="gpt-x", messages=conversation, system="From the workflow."))
    assert fake.requests[0].body["messages"] == [
        {"role": "system", "content": "From the workflow."},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
    ]


def test_a_compatible_server_that_repeats_the_id_on_every_piece_reads_as_openai_streams() -> None:
    seen: set[int] = set()
    first = call_pieces([{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a"'}}], seen)
    again = call_pieces([{"index": 0, "id": "c", "function": {"name": "f", "arguments": ":1}"}}], seen)
    assert first == [ToolCallDelta(0, "c", "f", '{"a"')]
    assert again == [ToolCallDelta(0, arguments=":1}")]  # clients concatenate: a repeated id would read "cc"


# Images ----------------------------------------------------------------------------------------------------------


async def test_image_parts_go_as_image_url_parts(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    parts = (
        TextPart("What is in both?"),
        ImagePart("https://example.com/cat.png", detail="low"),
        ImagePart(f"data:image/png;base64,{PIXEL}"),
    )
    await collect(provider, ProviderRequest(model="gpt-x", messages=(Message("user", parts),)))
    assert fake.requests[0].body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in both?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("option", "request_"),
    [
        ("images", ProviderRequest(model="m", messages=(Message("user", (ImagePart("https://x.test/a.png"),)),))),
        ("tools", ProviderRequest(model="m", messages=(Message("user", "hi"),), tools=(TIME,))),
    ],
)
async def test_a_compatible_server_without_images_or_tools_refuses_before_sending(
    option: str, request_: ProviderRequest
) -> None:
    async with FakeProvider("openai") as fake:
        async with openai_adapter(fake, "openai-compatible", **{option: False}) as provider:
            with pytest.raises(Unsupported, match=f"{option}: false"):
                await collect(provider, request_)
    assert fake.requests == []


# JSON modes, parameters, fields Sluice has no model for ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "sent"),
    [
        (ResponseFormat("json_object"), {"type": "json_object"}),
        (
            ResponseFormat("json_schema", schema=SCHEMA, name="sum"),
            {"type": "json_schema", "json_schema": {"name": "sum", "schema": SCHEMA}},
        ),
    ],
)
async def test_json_modes_are_response_format(
    openai: tuple[OpenAIProvider, FakeProvider], wanted: ResponseFormat, sent: dict[str, Any]
) -> None:
    provider, fake = openai
    await collect(provider, ProviderRequest(model="gpt-x", messages=(Message("user", "1+1?"),), response_format=wanted))
    assert fake.requests[0].body["response_format"] == sent


async def test_a_strict_schema_goes_the_native_way_and_wins(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    asked = ProviderRequest(
        model="gpt-x",
        messages=(Message("user", "1+1?"),),
        schema=SCHEMA,
        response_format=ResponseFormat("json_object"),
    )
    _, request = prepare(asked, "response_format")
    await collect(provider, request)
    sent = fake.requests[0].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["required"] == ["answer"]


@pytest.mark.parametrize(
    ("kind", "length_name"), [("openai", "max_completion_tokens"), ("openai-compatible", "max_tokens")]
)
async def test_parameters_and_unknown_fields_are_forwarded(kind: str, length_name: str) -> None:
    passthrough = {
        "logprobs": True,
        "top_logprobs": 2,
        "user": "u-1",
        "metadata": {"team": "a"},
        "service_tier": "flex",
        "presence_penalty": 0.5,
    }
    params = {"max_tokens": 50, "temperature": 0.3, "top_p": 0.9, "stop": ["END"], "seed": 7}
    async with FakeProvider("openai") as fake:
        async with openai_adapter(fake, kind) as provider:
            request = ProviderRequest(
                model="m", messages=(Message("user", "hi"),), params=params, passthrough=passthrough
            )
            await collect(provider, request)
    body = fake.requests[0].body
    assert {k: body[k] for k in passthrough} == passthrough
    assert {k: body.get(k) for k in (length_name, "temperature", "top_p", "stop", "seed")} == {
        length_name: 50,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
    }


def test_usage_details_are_read_when_the_model_has_them() -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "total_tokens": 200,
        "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    assert usage_of(usage) == Usage(120, 80, cached_input_tokens=100, reasoning_tokens=64)
    assert usage_of({"prompt_tokens": 3, "completion_tokens": 4}) == Usage(3, 4)


async def test_a_length_cut_is_finish_reason_length(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    fake.script(Script(text="partial"))
    chunks = await collect(provider, ProviderRequest(model="gpt-x", messages=(Message("user", "hi"),), stream=False))
    assert chunks[0].finish_reason == "stop"
    raw = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "cut"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    assert provider._completion(orjson.dumps(raw)) == Chunk(text="cut", finish_reason="length", usage=Usage(1, 1))


@pytest.mark.parametrize("stream", [True, False])
async def test_a_compatible_servers_reasoning_is_thinking(
    openai: tuple[OpenAIProvider, FakeProvider], stream: bool
) -> None:
    provider, fake = openai
    fake.script(Script(thinking="Weigh it up.", text="Yes."))
    request = ProviderRequest(model="gpt-x", messages=(Message("user", "hi"),), stream=stream)
    chunks = await collect(provider, request)
    thinking = [piece for chunk in chunks for piece in chunk.thinking]
    expected = ["Weigh", " it", " up."] if stream else ["Weigh it up."]
    assert thinking == [ThinkingDelta(0, text=piece) for piece in expected]  # one block, unsigned
    assert "".join(chunk.text for chunk in chunks) == "Yes."
    assert reasoning_of({"reasoning": "OpenRouter's name"}) == "OpenRouter's name" and reasoning_of({}) == ""


# Embeddings ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dimensions", [None, 64])
async def test_embeddings_are_floats_in_input_order(
    openai: tuple[OpenAIProvider, FakeProvider], dimensions: int | None
) -> None:
    provider, fake = openai
    inputs = ("first text", "second text here", "first text")
    result = await provider.embed(
        EmbeddingRequest(model="text-embedding-3-small", inputs=inputs, dimensions=dimensions)
    )
    sent = fake.requests[0]
    assert sent.path == "/v1/embeddings" and sent.headers["authorization"] == "Bearer k"
    extra = {"dimensions": dimensions} if dimensions else {}
    assert sent.body == {"model": "text-embedding-3-small", "input": list(inputs), "encoding_format": "float", **extra}
    assert result.vectors == tuple(tuple(fake_vector(text, dimensions or 1536)) for text in inputs)
    assert result.usage == Usage(input_tokens=7)


async def test_an_embeddings_failure_is_a_provider_error(openai: tuple[OpenAIProvider, FakeProvider]) -> None:
    provider, fake = openai
    fake.script(Script(status=429))
    with pytest.raises(ProviderError, match="429"):
        await provider.embed(EmbeddingRequest(model="text-embedding-3-small", inputs=("x",)))


# Through a real gateway: what Sluice streams is what the upstream streamed -----------------------------------------

TOOLS_BODY = tools_body("auto")


@pytest.mark.parametrize("kind", ["openai", "openai-compatible"])
async def test_a_streamed_tool_call_through_sluice_is_the_upstreams_own(
    start_gateway: StartGateway, tmp_path: Path, kind: str
) -> None:
    calls = (PARIS, {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_2"})
    script = Script(text="Let me see.", tool_calls=calls, argument_chunks=3)
    body = {"messages": [{"role": "user", "content": "Weather?"}], "stream": True, **TOOLS_BODY}
    async with FakeProvider("openai") as fake:
        config = f"providers:\n  up: {{type: {kind}, api_key: k, base_url: '{fake.base_url}', merge_reads: false}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        fake.script(script, script)
        async with httpx.AsyncClient(base_url=fake.url) as direct, gw.client() as client:
            upstream = await direct.post("/v1/chat/completions", json={"model": "gpt-x", **body})
            through = await client.post("/v1/chat/completions", json={"model": "up/gpt-x", **body})
        assert through.status_code == 200, through.text
        forwarded = fake.requests[1].body
        assert forwarded["tools"] == TOOLS_BODY["tools"] and forwarded["tool_choice"] == "auto"

    def choices(text: str) -> list[tuple[dict[str, Any], str | None]]:
        return [(e["choices"][0]["delta"], e["choices"][0]["finish_reason"]) for e in sse_events(text) if e["choices"]]

    def normalised(pairs: list[tuple[dict[str, Any], str | None]]) -> list[tuple[dict[str, Any], str | None]]:
        # The opening delta's `refusal` is OpenAI's, which Sluice does not model; the rest must be equal.
        return [({k: v for k, v in delta.items() if k != "refusal"}, finish) for delta, finish in pairs]

    assert normalised(choices(through.text)) == normalised(choices(upstream.text))
    assert through.text.rstrip().endswith("data: [DONE]")


async def test_a_non_streamed_tool_call_through_sluice_is_the_upstreams_own(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    body = {"messages": [{"role": "user", "content": "Weather?"}], **TOOLS_BODY}
    async with FakeProvider("openai") as fake:
        config = f"providers:\n  up: {{type: openai, api_key: k, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        fake.script(Script(tool_calls=(PARIS,)), Script(tool_calls=(PARIS,)))
        async with httpx.AsyncClient(base_url=fake.url) as direct, gw.client() as client:
            upstream = (await direct.post("/v1/chat/completions", json={"model": "gpt-x", **body})).json()
            through = (await client.post("/v1/chat/completions", json={"model": "up/gpt-x", **body})).json()
    upstream_message = {k: v for k, v in upstream["choices"][0]["message"].items() if k != "refusal"}
    assert through["choices"][0]["message"] == upstream_message
    assert through["choices"][0]["finish_reason"] == "tool_calls"
