"""The official `anthropic` package, unchanged, against Sluice's `/v1/messages` in front of an OpenAI-shaped provider
and an Anthropic one: a message, a streamed one, tool use and a tool-result turn, an image, `count_tokens`, and the
typed errors it must raise. The exact event sequence is in test_anthropic_messages_out.py, the Claude Code shape in
test_anthropic_messages_native.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from sluice.api.anthropic_messages import estimate_tokens
from sluice.testing import FakeProvider, Script
from sluice.testing.protocols.base import tokens_of
from tests.conftest import RunningGateway, StartGateway, write_config

KINDS = ("openai", "anthropic")
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALLS = (
    {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_paris"},
    {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "toolu_oslo"},
)
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    async with FakeProvider("openai") as op, FakeProvider("anthropic") as an:
        yield {"openai": op, "anthropic": an}


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fakes: dict[str, FakeProvider]) -> RunningGateway:
    providers = "\n".join(
        f"  {kind}: {{type: {kind}, api_key: upstream-key, base_url: '{fake.base_url}'}}"
        for kind, fake in fakes.items()
    )
    # One workflow per provider, no retry or failover: a provider's failure is the answer's.
    workflows = "".join(
        f"  {kind}-once:\n    chain:\n      - {{provider: {kind}, model: model-x, retries: 0}}\n" for kind in KINDS
    )
    # OpenAI, then Anthropic, which continues an answer OpenAI was cut in (docs/providers.md, "Continuation").
    workflows += (
        "  across:\n    chain: [{provider: openai, model: gpt-x, retries: 0}, {provider: anthropic, model: c}]\n"
    )
    return await start_gateway(config_path=write_config(tmp_path, f"providers:\n{providers}\nworkflows:\n{workflows}"))


def sdk(gw: RunningGateway, api_key: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=api_key or gw.api_key, max_retries=0, timeout=10)


def sent(fake: FakeProvider) -> str:
    return orjson.dumps(fake.requests[-1].body).decode()


@pytest.mark.parametrize("kind", KINDS)
async def test_create_answers_a_message(gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str) -> None:
    fakes[kind].script(Script(text="Hello there."))
    async with sdk(gateway) as client:
        message = await client.messages.create(model=f"{kind}/model-x", max_tokens=64, messages=HELLO)  # type: ignore[arg-type]
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == f"{kind}/model-x"
    assert [(block.type, getattr(block, "text", None)) for block in message.content] == [("text", "Hello there.")]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert "Hello" in sent(fakes[kind])


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_gives_the_final_text(gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str) -> None:
    fakes[kind].script(Script(text="Streamed in several small pieces."))
    async with sdk(gateway) as client:
        async with client.messages.stream(model=f"{kind}/model-x", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
            texts = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert "".join(texts) == "Streamed in several small pieces."
    assert [block.type for block in final.content] == ["text"] and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0  # from message_delta's cumulative counts


@pytest.mark.parametrize("kind", KINDS)
async def test_get_final_text(gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str) -> None:
    fakes[kind].script(Script(text="Final."))
    async with sdk(gateway) as client:
        async with client.messages.stream(model=f"{kind}/model-x", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
            assert await stream.get_final_text() == "Final."


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
async def test_tool_use_then_a_tool_result_turn(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str, stream: bool
) -> None:
    fakes[kind].script(Script(text="Checking.", tool_calls=CALLS), Script(text="Sunny in Paris, rain in Oslo."))
    ask = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
    async with sdk(gateway) as client:
        if stream:
            async with client.messages.stream(
                model=f"{kind}/model-x",
                max_tokens=256,
                messages=ask,  # type: ignore[arg-type]
                tools=[WEATHER],  # type: ignore[list-item]
            ) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(
                model=f"{kind}/model-x",
                max_tokens=256,
                messages=ask,  # type: ignore[arg-type]
                tools=[WEATHER],  # type: ignore[list-item]
            )
        assert message.stop_reason == "tool_use"
        uses = [block for block in message.content if block.type == "tool_use"]
        assert [(use.id, use.name, use.input) for use in uses] == [
            ("toolu_paris", "get_weather", {"city": "Paris"}),
            ("toolu_oslo", "get_weather", {"city": "Oslo"}),
        ]
        assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
        results = [
            {"type": "tool_result", "tool_use_id": use.id, "content": f"{use.input['city']}: temperature_c 21"}  # type: ignore[index]
            for use in uses
        ]
        answer = await client.messages.create(
            model=f"{kind}/model-x",
            max_tokens=256,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=[
                *ask,
                {"role": "assistant", "content": [block.model_dump() for block in message.content]},
                {"role": "user", "content": results},
            ],  # type: ignore[arg-type]
        )
    assert answer.content[0].type == "text" and answer.content[0].text == "Sunny in Paris, rain in Oslo."
    body = sent(fakes[kind])
    assert "Oslo: temperature_c 21" in body and "toolu_paris" in body  # the results, in the provider's own shape
    if kind == "openai":
        messages = fakes[kind].requests[-1].body["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_image_block_reaches_the_provider(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text="A single pixel."))
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    async with sdk(gateway) as client:
        message = await client.messages.create(
            model=f"{kind}/model-x",
            max_tokens=64,
            messages=[{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}],  # type: ignore[list-item]
        )
    assert message.content[0].type == "text" and message.content[0].text == "A single pixel."
    assert PIXEL in sent(fakes[kind])


async def test_count_tokens_is_the_anthropic_providers_own_count(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    async with sdk(gateway) as client:
        counted = await client.messages.count_tokens(
            model="anthropic-once",
            messages=HELLO,  # type: ignore[arg-type]
            tools=[WEATHER],  # type: ignore[list-item]
            extra_headers={"anthropic-beta": "token-counting-2024-11-01"},
        )
    received = fakes["anthropic"].requests[-1]
    assert received.path == "/v1/messages/count_tokens"
    assert received.body["model"] == "model-x" and received.body["tools"][0]["name"] == "get_weather"
    assert received.headers["anthropic-beta"] == "token-counting-2024-11-01"
    assert received.headers["x-api-key"] == "upstream-key"  # the provider's key, never the client's
    assert counted.input_tokens == tokens_of(received.body)


async def test_count_tokens_is_estimated_for_other_provider_types(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    messages: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "Describe it " * 40}, image]}]
    async with sdk(gateway) as client:
        counted = await client.messages.count_tokens(model="openai-once", messages=messages)
    assert counted.input_tokens == estimate_tokens({"messages": messages})
    assert counted.input_tokens > 1_600 + 100  # the image counted whole, its data not as text
    assert fakes["openai"].requests == []  # nothing was sent


# Errors the SDK must raise ---------------------------------------------------------------------------------------


async def test_a_missing_max_tokens_is_a_bad_request_naming_it(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(anthropic.BadRequestError, match=r"max_tokens: Field required") as raised:
            await client.messages.create(model="openai-once", messages=HELLO, max_tokens=anthropic.omit)  # type: ignore[call-overload]
    assert raised.value.status_code == 400
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }


async def test_a_bad_image_is_a_bad_request_naming_the_field(gateway: RunningGateway) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "not base64!"}}
    messages = [{"role": "user", "content": "Look."}, {"role": "assistant", "content": "Where?"}]
    messages.append({"role": "user", "content": [{"type": "text", "text": "Here:"}, image]})  # type: ignore[dict-item]
    async with sdk(gateway) as client:
        with pytest.raises(anthropic.BadRequestError, match=r"messages\[2\]\.content\[1\]\.source\.data: "):
            await client.messages.create(model="openai-once", max_tokens=8, messages=messages)  # type: ignore[arg-type]


async def test_a_wrong_key_is_an_authentication_error(gateway: RunningGateway) -> None:
    async with sdk(gateway, api_key="sk_sluice_wrong") as client:
        with pytest.raises(anthropic.AuthenticationError) as raised:
            await client.messages.create(model="openai-once", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "the API key is not valid (unknown or revoked)"},
    }


async def test_no_key_is_refused_saying_how_to_send_one(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        answer = await http.post("/v1/messages", json={"model": "openai-once", "max_tokens": 8, "messages": HELLO})
    assert answer.status_code == 401
    assert answer.json() == {
        "type": "error",
        "error": {
            "type": "authentication_error",
            "message": "send your API key as 'x-api-key: <key>' or 'Authorization: Bearer <key>'",
        },
    }


async def test_a_bearer_key_is_accepted_as_well(gateway: RunningGateway, fakes: dict[str, FakeProvider]) -> None:
    fakes["openai"].script(Script(text="Hi."))
    async with anthropic.AsyncAnthropic(base_url=gateway.url, auth_token=gateway.api_key, max_retries=0) as client:
        message = await client.messages.create(model="openai-once", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert message.content[0].type == "text" and message.content[0].text == "Hi."


async def test_an_unknown_model_is_not_found(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(anthropic.NotFoundError, match="neither a workflow nor 'provider/model'"):
            await client.messages.create(model="claude-unknown", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError), (400, anthropic.BadRequestError)],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_chain_that_fails_before_its_first_token_is_an_http_error(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], status: int, error: type[Exception], stream: bool
) -> None:
    fakes["anthropic"].script(Script(status=status))
    async with sdk(gateway) as client:
        with pytest.raises(error):
            if stream:
                async with client.messages.stream(model="anthropic-once", max_tokens=8, messages=HELLO) as events:  # type: ignore[arg-type]
                    await events.get_final_message()
            else:
                await client.messages.create(model="anthropic-once", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]


async def test_a_failure_after_the_stream_started_is_raised_from_the_stream(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["anthropic"].script(Script(text="one two three four", error_after=2))
    async with sdk(gateway) as client:
        async with client.messages.stream(model="anthropic-once", max_tokens=64, messages=HELLO) as events:  # type: ignore[arg-type]
            # Its only provider failed mid-stream, with nothing to continue on: the stream ends with that error.
            with pytest.raises(anthropic.APIStatusError, match="failed mid-stream: Overloaded"):
                await events.get_final_message()


async def test_a_stream_cut_mid_word_goes_on_on_the_next_provider(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    answer = "Streaming through a cut, the answer arrives whole."
    fakes["openai"].script(Script(text=answer, cut_at=answer.index("cut") + 2))
    fakes["anthropic"].script(Script(text=answer))
    async with sdk(gateway) as client:
        async with client.messages.stream(model="across", max_tokens=64, messages=HELLO) as events:  # type: ignore[arg-type]
            text = await events.get_final_text()
    assert text == answer
    prefill = fakes["anthropic"].requests[-1].body["messages"][-1]  # continued from what had been delivered
    assert prefill["role"] == "assistant" and prefill["content"] and answer.startswith(prefill["content"])
