"""`POST /v1/responses` with the official `openai` package, unchanged, against a real gateway in front of an
OpenAI-shaped fake and the Anthropic fake (the translation goes through the canonical model both ways): plain,
streamed (typed events, and the SDK's `stream` helper), function tools with a function_call_output turn (chained
with `previous_response_id`, and stateless), `text.format` json_schema (`parse`), and the errors it must raise."""

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

KINDS = ("openai", "anthropic")
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": None,
}
CALLS = ({"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_paris"},)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, FakeProvider]]:
    async with FakeProvider("openai") as op, FakeProvider("anthropic") as an:
        yield {"openai": op, "anthropic": an}


@pytest.fixture
async def gateway(start_gateway: StartGateway, tmp_path: Path, fakes: dict[str, FakeProvider]) -> RunningGateway:
    providers = "\n".join(
        f"  {kind}: {{type: {kind}, api_key: k, base_url: '{fake.base_url}'}}" for kind, fake in fakes.items()
    )
    workflows = "workflows:\n  once:\n    chain:\n      - {provider: openai, model: model-x, retries: 0}\n"
    workflows += (
        "  across:\n    chain: [{provider: openai, model: gpt-x, retries: 0}, {provider: anthropic, model: c}]\n"
    )
    return await start_gateway(config_path=write_config(tmp_path, f"providers:\n{providers}\n{workflows}"))


def sdk(gw: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=gw.api_key, max_retries=0, timeout=10)


def sent(fake: FakeProvider, index: int = -1) -> str:
    return orjson.dumps(fake.requests[index].body).decode()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_plain_response(gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str) -> None:
    fakes[kind].script(Script(text="Hello there."))
    async with sdk(gateway) as client:
        response = await client.responses.create(
            model=f"{kind}/model-x",
            input="Say hello.",
            instructions="Be brief.",
            max_output_tokens=64,
            metadata={"ticket": "T-1"},
        )
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == "Hello there."
    assert response.model == f"{kind}/model-x" and response.instructions == "Be brief."
    assert response.metadata == {"ticket": "T-1"} and response.max_output_tokens == 64
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert "Be brief." in sent(fakes[kind]) and "Say hello." in sent(fakes[kind])
    await gateway.gateway.passthrough.log.flush()  # the pass-through's write-behind request log
    logged = await gateway.gateway.store.get_request(response.id)  # in the request log under the same id
    assert logged is not None and logged.status == "completed" and logged.body["api"] == "openai.responses"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_streamed_response_gives_the_typed_events_in_order(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text="One two three.", chunk_delay=0.01))  # drained per piece: one delta each
    async with sdk(gateway) as client:
        stream = await client.responses.create(model=f"{kind}/model-x", input="Count.", stream=True)
        events = [event async for event in stream]
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "One two three."
    final = events[-1]
    assert final.type == "response.completed" and final.response.output_text == "One two three."


async def test_the_sdk_stream_helper_accumulates_the_response(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["openai"].script(Script(text="Checking.", tool_calls=CALLS))
    async with sdk(gateway) as client:
        async with client.responses.stream(model="openai/model-x", input="Weather?", tools=[WEATHER]) as stream:
            texts = [event.delta async for event in stream if event.type == "response.output_text.delta"]
            final = await stream.get_final_response()  # checks every item's identity from added to done
    assert "".join(texts) == "Checking." and final.output_text == "Checking."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("call_paris", "get_weather", {"city": "Paris"})
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_function_call_then_its_output_with_previous_response_id(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(tool_calls=CALLS), Script(text="It is 21 degrees in Paris."))
    async with sdk(gateway) as client:
        first = await client.responses.create(
            model=f"{kind}/model-x", input="Weather in Paris?", tools=[WEATHER], instructions="Use the tools."
        )
        [call] = first.output
        assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
        assert orjson.loads(call.arguments) == {"city": "Paris"} and call.call_id
        second = await client.responses.create(
            model=f"{kind}/model-x",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature_c": 21}'}],
            tools=[WEATHER],
        )
    assert second.output_text == "It is 21 degrees in Paris." and second.previous_response_id == first.id
    assert second.instructions is None  # instructions do not carry over, as in OpenAI's API
    body = sent(fakes[kind])
    assert "Weather in Paris?" in body and "temperature_c" in body and call.call_id in body
    assert "Use the tools." not in body


async def test_a_stateless_turn_sends_the_output_items_back(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    fakes["openai"].script(Script(tool_calls=CALLS), Script(text="21 degrees."))
    async with sdk(gateway) as client:
        question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = await client.responses.create(model="openai/model-x", input=question, tools=[WEATHER])
        output = [{"type": "function_call_output", "call_id": first.output[0].call_id, "output": "21"}]  # type: ignore[union-attr]
        second = await client.responses.create(
            model="openai/model-x", input=[*question, *first.output, *output], tools=[WEATHER], store=False
        )
    assert second.output_text == "21 degrees." and second.store is False
    messages = fakes["openai"].requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == "call_paris" and messages[2]["tool_call_id"] == "call_paris"


class Sum(BaseModel):
    answer: int


@pytest.mark.parametrize("kind", KINDS)
async def test_parse_with_a_json_schema_text_format(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], kind: str
) -> None:
    fakes[kind].script(Script(text='{"answer": "two"}'), Script(text='{"answer": 2}'))
    async with sdk(gateway) as client:
        response = await client.responses.parse(model=f"{kind}/model-x", input="1+1?", text_format=Sum)
    assert response.output_parsed == Sum(answer=2)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"
    assert len(fakes[kind].requests) == 2  # strict: validated like a workflow schema, then asked again


async def test_a_bad_image_is_a_400_naming_the_field(gateway: RunningGateway) -> None:
    content: Any = [{"type": "input_text", "text": "What is it?"}, {"type": "input_image", "image_url": "nope"}]
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.responses.create(model="openai/model-x", input=[{"role": "user", "content": content}])
    body = raised.value.body
    assert isinstance(body, dict) and body["param"] == "input[0].content[1].image_url"


async def test_a_hosted_tool_is_refused_by_name(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError, match="web_search") as raised:
            await client.responses.create(model="openai/model-x", input="hi", tools=[{"type": "web_search"}])
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "tools[0].type"


async def test_an_unknown_previous_response_is_a_400(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as raised:
            await client.responses.create(model="openai/model-x", input="hi", previous_response_id="req_nope")
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == "previous_response_id"


async def test_an_unknown_model_is_a_404(gateway: RunningGateway) -> None:
    async with sdk(gateway) as client:
        with pytest.raises(openai.NotFoundError, match="neither a workflow"):
            await client.responses.create(model="nope", input="hi")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_chain_that_fails_before_its_first_token_is_an_http_error(
    gateway: RunningGateway, fakes: dict[str, FakeProvider], stream: bool
) -> None:
    fakes["openai"].script(Script(status=429))
    async with sdk(gateway) as client:
        with pytest.raises(openai.RateLimitError):
            answer = await client.responses.create(model="once", input="hi", stream=stream)
            if stream:
                async for _ in answer:  # type: ignore[union-attr]
                    pass


async def test_a_stream_cut_mid_word_goes_on_on_the_next_provider(
    gateway: RunningGateway, fakes: dict[str, FakeProvider]
) -> None:
    answer = "Streaming through a cut, the answer arrives whole."
    fakes["openai"].script(Script(text=answer, cut_at=answer.index("cut") + 2))
    fakes["anthropic"].script(Script(text=answer))
    async with sdk(gateway) as client:
        stream = await client.responses.create(model="across", input="Say it.", stream=True)
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
    assert "".join(deltas) == answer  # no error event: the text simply goes on
