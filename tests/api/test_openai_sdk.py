"""The official `openai` package, unchanged, against Sluice in front of every provider type: tools (non-streamed
and streamed, parallel calls), a tool-result turn, image parts, `response_format` json_schema (`parse`), and the
errors it must raise. Embeddings and `models.list()` have their own files (test_embeddings.py, test_models.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from pydantic import BaseModel

from sluice.testing import FakeProvider, Script
from tests.conftest import RunningGateway, StartGateway, write_config

KINDS = ("openai", "anthropic", "gemini", "ollama")
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALLS = (
    {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_paris"},
    {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_oslo"},
)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    async with (
        FakeProvider("openai") as op,
        FakeProvider("anthropic") as an,
        FakeProvider("gemini") as ge,
        FakeProvider("ollama") as ol,
    ):
        yield {"openai": op, "anthropic": an, "gemini": ge, "ollama": ol}


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fakes: dict[str, FakeProvider]) -> RunningGateway:
    providers = "\n".join(
        f"  {kind}: {{type: {kind}, api_key: k, base_url: '{fake.base_url}'}}" for kind, fake in fakes.items()
    )
    # `once`: no retry, no failover, so a provider's failure is the answer's.
    workflows = "workflows:\n  once:\n    chain:\n      - {provider: openai, model: model-x, retries: 0}\n"
    return await start_gateway(config_path=write_config(tmp_path, f"providers:\n{providers}\n{workflows}"))


def sdk(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key, max_retries=0, timeout=10)


def model_of(kind: str) -> str:
    return f"{kind}/model-x"


def arguments_of(calls: list[Any]) -> list[tuple[str, Any]]:
    return [(call.function.name, orjson.loads(call.function.arguments)) for call in calls]


# Tools -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_parallel_tool_calls_not_streamed(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(tool_calls=CALLS))
    async with sdk(gateway) as client:
        completion = await client.chat.completions.create(
            model=model_of(kind),
            messages=[{"role": "user", "content": "Weather in Paris and Oslo?"}],
            tools=[WEATHER],  # type: ignore[list-item]
        )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert arguments_of(calls) == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    assert all(call.type == "function" and call.id for call in calls)
    assert len({call.id for call in calls}) == 2  # ids a following tool-result turn can answer
    assert "get_weather" in orjson.dumps(fakes[kind].requests[0].body).decode()


@pytest.mark.parametrize("kind", KINDS)
async def test_parallel_tool_calls_streamed_as_openai_streams_them(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text="Checking.", tool_calls=CALLS, argument_chunks=3))
    async with sdk(gateway) as client:
        stream = await client.chat.completions.create(
            model=model_of(kind),
            messages=[{"role": "user", "content": "Weather in Paris and Oslo?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert "".join(delta.content or "" for delta in deltas) == "Checking."
    pieces = [call for delta in deltas for call in delta.tool_calls or ()]
    calls: dict[int, dict[str, str]] = {}
    for piece in pieces:
        if piece.index not in calls:  # the call's first piece: its id, type and name
            assert piece.id and piece.type == "function" and piece.function and piece.function.name
            calls[piece.index] = {"id": piece.id, "name": piece.function.name, "arguments": ""}
        else:  # later pieces: more arguments only (a client concatenates whatever it is given)
            assert piece.id is None and piece.function is not None and piece.function.name is None
        assert piece.function is not None
        calls[piece.index]["arguments"] += piece.function.arguments or ""
    assert sorted(calls) == [0, 1]
    assert [(c["name"], orjson.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    if kind in ("openai", "anthropic"):  # the providers that stream a call's arguments in pieces
        assert len(pieces) > 2


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_result_turn_reaches_the_provider_and_the_answer_comes_back(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text="It is 21 degrees in Paris."))
    async with sdk(gateway) as client:
        completion = await client.chat.completions.create(
            model=model_of(kind),
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_paris",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_paris", "content": '{"temperature_c": 21}'},
            ],
            tools=[WEATHER],  # type: ignore[list-item]
        )
    assert completion.choices[0].message.content == "It is 21 degrees in Paris."
    assert completion.choices[0].finish_reason == "stop"
    sent = orjson.dumps(fakes[kind].requests[0].body).decode()
    assert "temperature_c" in sent and "Paris" in sent  # the result and the call, in the provider's own shape


# Images, JSON modes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_an_inline_image_part_reaches_every_provider(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text="A single pixel."))
    async with sdk(gateway) as client:
        completion = await client.chat.completions.create(
            model=model_of(kind),
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                    ],
                }
            ],
        )
    assert completion.choices[0].message.content == "A single pixel."
    assert PIXEL in orjson.dumps(fakes[kind].requests[0].body).decode()


class Sum(BaseModel):
    answer: int


@pytest.mark.parametrize("kind", KINDS)
async def test_parse_with_a_json_schema_gives_the_object(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text='{"answer": 2}'))
    async with sdk(gateway) as client:
        completion = await client.chat.completions.parse(
            model=model_of(kind), messages=[{"role": "user", "content": "1+1?"}], response_format=Sum
        )
    assert completion.choices[0].message.parsed == Sum(answer=2)


async def test_a_strict_schema_the_answer_breaks_is_re_asked(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["openai"].script(Script(text='{"answer": "two"}'), Script(text='{"answer": 2}'))
    async with sdk(gateway) as client:
        completion = await client.chat.completions.parse(
            model=model_of("openai"), messages=[{"role": "user", "content": "1+1?"}], response_format=Sum
        )
    assert completion.choices[0].message.parsed == Sum(answer=2)
    assert len(fakes["openai"].requests) == 2  # validated like a workflow schema, then asked again


# Errors the SDK must raise ---------------------------------------------------------------------------------------


async def test_a_malformed_tool_schema_is_a_bad_request_naming_the_field(gateway: RunningGateway) -> None:
    bad_tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(
                model=model_of("openai"),
                messages=[{"role": "user", "content": "hi"}],
                tools=[bad_tool],  # type: ignore[list-item]
            )
    assert raised.value.status_code == 400
    body = raised.value.body
    assert isinstance(body, dict) and body.get("param", "").startswith("tools[0].function.parameters")


async def test_an_unsupported_part_type_is_a_bad_request(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError, match=r"messages\[0\]\.content\[1\]"):
            await client.chat.completions.create(
                model=model_of("openai"),
                messages=[
                    {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "video", "video": {}}]}  # type: ignore[list-item]
                ],
            )


async def test_a_stream_that_fails_before_its_first_token_is_an_http_error(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["openai"].script(Script(status=429))
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError):
            stream = await client.chat.completions.create(
                model="once", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            async for _ in stream:
                pass
