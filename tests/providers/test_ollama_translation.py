"""The Ollama adapter translates the canonical request and answer exactly, against the wire-faithful fake:
the request body it sends, the chunks it yields, its embeddings, and through a real gateway the OpenAI-shaped answer
of `/v1/chat/completions` (docs/translation.md, "Ollama")."""

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
from sluice.providers.ollama import AnswerReader, OllamaProvider
from sluice.providers.pool import ProviderPool
from sluice.structured.native import prepare
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols import fake_vector
from sluice.workflows.loader import build_catalog
from tests.conftest import StartGateway, write_config

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
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
CALL_ID = re.compile(r"call_[0-9a-f]{24}")


@pytest.fixture
async def ollama() -> AsyncIterator[tuple[OllamaProvider, FakeProvider]]:
    async with FakeProvider("ollama") as fake:
        record = {"type": "ollama", "base_url": fake.base_url, "keep_alive": "5m"}
        pool = ProviderPool(build_catalog({"providers": {"o": record}, "workflows": {}}, {}))
        try:
            provider = pool.get("o")
            assert isinstance(provider, OllamaProvider)
            yield provider, fake
        finally:
            await pool.aclose()


async def collect(provider: OllamaProvider, request: ProviderRequest) -> list[Chunk]:
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
        Chunk(usage=usage_of(fake, 3), finish_reason="tool_calls"),
    ]


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
        Chunk(usage=usage_of(fake, 5), finish_reason="tool_calls"),  # the fake counts 3 words, "{" and "}"
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
        Chunk(usage=usage_of(fake, 8), finish_reason="tool_calls"),
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


@pytest.mark.parametrize(("done_reason", "finish"), [("stop", "stop"), ("length", "length"), (None, "stop")])
def test_done_reason_is_the_finish_reason(done_reason: str | None, finish: str) -> None:
    line = {"message": {"role": "assistant", "content": "end"}, "done": True, "eval_count": 2}
    if done_reason:
        line["done_reason"] = done_reason
    assert list(AnswerReader("o").read(line)) == [Chunk(text="end", usage=Usage(0, 2), finish_reason=finish)]


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


# Tool results ----------------------------------------------------------------------------------------------------


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


# Images ----------------------------------------------------------------------------------------------------------


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


# JSON modes and parameters ---------------------------------------------------------------------------------------

SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


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


# Embeddings ------------------------------------------------------------------------------------------------------


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


# Through a real gateway ------------------------------------------------------------------------------------------

TOOLS_BODY = {
    "tools": [{"type": "function", "function": TOOLS_SENT[0]["function"]}],
    "tool_choice": "auto",
}


def openai_call(call_id: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_completions_answers_ollama_calls_in_openai_shape(
    start_gateway: StartGateway, tmp_path: Path, stream: bool
) -> None:
    async with FakeProvider("ollama") as fake:
        config = f"providers:\n  o: {{type: ollama, base_url: '{fake.base_url}'}}\n"
        gw = await start_gateway(config_path=write_config(tmp_path, config))
        calls = (
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_p"},
            {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_o"},
        )
        fake.script(Script(tool_calls=calls))
        body = {"model": "o/qwen3", "messages": [{"role": "user", "content": "Weather?"}], "stream": stream}
        async with gw.client() as client:
            response = await client.post("/v1/chat/completions", json={**body, **TOOLS_BODY})
        assert response.status_code == 200, response.text
        assert fake.requests[0].body.get("tools") == TOOLS_SENT[:1], "the tools were not forwarded"
        if not stream:
            choice = response.json()["choices"][0]
            assert choice["finish_reason"] == "tool_calls"
            assert choice["message"] == {
                "role": "assistant",
                "content": None,
                "tool_calls": [openai_call("call_p", '{"city":"Paris"}'), openai_call("call_o", '{"city":"Oslo"}')],
            }
        else:
            events = [orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
            choices = [e["choices"][0] for e in events if e["choices"]]
            seen = [call for c in choices for call in c["delta"].get("tool_calls", ())]
            assert seen == [
                {"index": 0, **openai_call("call_p", '{"city":"Paris"}')},
                {"index": 1, **openai_call("call_o", '{"city":"Oslo"}')},
            ]
            assert choices[-1]["finish_reason"] == "tool_calls"


async def logged(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    """A pass-through's record, once it is in the log (it is written when the run has finished)."""
    for _ in range(250):
        found = await client.get(f"/v1/requests/{request_id}")
        if found.status_code != 404:
            return dict(found.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"request {request_id} never reached the log")


async def test_an_image_link_ollama_cannot_take_fails_over_to_the_next_provider(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    async with FakeProvider("ollama") as local, FakeProvider("openai", text="A cat.") as backup:
        config = f"""
providers:
  local: {{type: ollama, base_url: "{local.base_url}"}}
  backup: {{type: openai, api_key: k, base_url: "{backup.base_url}"}}
workflows:
  vision:
    chain:
      - {{provider: local, model: llava}}
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
        assert local.requests == []  # refused before anything was sent
        attempts = [(a["provider"], a["status"], a["error_code"]) for a in record["attempts"]]
        assert attempts == [("local", "failed", "unsupported_by_provider"), ("backup", "succeeded", None)]
