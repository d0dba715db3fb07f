"""The simulated provider: honours any schema, streams in tokens, and misbehaves on cue for the repair paths."""

import asyncio

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from sluice.providers.base import Chunk, EmbeddingRequest, Message, ProviderRequest
from sluice.providers.messages import Tool, ToolCall, ToolChoice
from sluice.providers.simulated import SimulatedProvider
from sluice.structured import SchemaViolation, finalize, reask
from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema
from tests.workflows.strategies import shorthand_of, shorthands

DEMO = compile_schema(DEMO_SCHEMA)


async def answer(
    model: str,
    schema: dict | None = DEMO,
    text: str = "I love this but the app is slow",
    messages: tuple[Message, ...] | None = None,
    reasks: int = 0,
) -> tuple[str, int]:
    messages = messages or (Message("user", text),)
    request = ProviderRequest(model=model, messages=messages, schema=schema, reasks=reasks, gateway_turns=2 * reasks)
    chunks = [chunk async for chunk in SimulatedProvider(pace_ms=0).stream(request)]
    return "".join(c.text for c in chunks), len(chunks)


async def test_it_streams_schema_valid_output_in_many_tokens() -> None:
    text, count = await answer("sim-1")
    data = finalize(DEMO, text)
    assert data["sentiment"] == "mixed" and "not a language model" in data["reply"]
    assert count > 20
    assert (await answer("sim-1"))[0] == text  # deterministic


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=shorthands)
def test_it_honours_any_shorthand_schema(fields: tuple) -> None:
    schema = compile_schema(shorthand_of(fields, nest=False))
    text, _ = asyncio.run(answer("sim-1", schema))
    finalize(schema, text)  # raises if the output does not validate


@pytest.mark.parametrize("fault", ["extra-text", "trailing-comma"])
async def test_syntax_faults_are_repaired_by_finalize(fault: str) -> None:
    text, _ = await answer(f"sim-{fault}")
    clean, _ = await answer("sim-1")
    assert text != clean
    assert finalize(DEMO, text) == finalize(DEMO, clean)


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("invalid-json", "not valid JSON"),
        ("missing-field", 'missing required field "action_items"'),
        ("wrong-enum", '$.sentiment: "not-mixed" is not allowed'),
    ],
)
async def test_semantic_faults_fail_validation_then_succeed_on_the_reask(fault: str, says: str) -> None:
    text, _ = await answer(f"sim-{fault}")
    with pytest.raises(SchemaViolation) as caught:
        finalize(DEMO, text)
    assert says in caught.value.message
    request = ProviderRequest(
        model=f"sim-{fault}", messages=(Message("user", "I love this but the app is slow"),), schema=DEMO
    )
    again = reask(request, text, caught.value)
    fixed, _ = await answer(f"sim-{fault}", messages=again.messages, reasks=again.reasks)
    clean, _ = await answer("sim-1")
    assert finalize(DEMO, fixed) == finalize(DEMO, clean)  # answers the original question, not the correction

    always = reask(
        ProviderRequest(model=f"sim-{fault}-always", messages=request.messages, schema=DEMO), text, caught.value
    )
    still_bad, _ = await answer(f"sim-{fault}-always", messages=always.messages, reasks=always.reasks)
    with pytest.raises(SchemaViolation):
        finalize(DEMO, still_bad)


async def test_without_a_schema_it_answers_in_prose() -> None:
    text, _ = await answer("sim-1", schema=None, text="hello there")
    assert text.startswith("You said:") and "hello there" in text


# Tools -------------------------------------------------------------------------------------------------------------

WEATHER = Tool(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"],
    },
)
TIME = Tool(name="get_time", parameters={"type": "object", "properties": {"zone": {"type": "string"}}})


async def chunks_of(request: ProviderRequest) -> list[Chunk]:
    return [chunk async for chunk in SimulatedProvider(pace_ms=0).stream(request)]


def calls_in(chunks: list[Chunk]) -> list[tuple[str | None, str | None, str]]:
    """(id, name, arguments) of each call, its pieces put together as a client does."""
    calls: dict[int, list] = {}
    for chunk in chunks:
        for delta in chunk.tool_calls:
            call = calls.setdefault(delta.index, [delta.id, delta.name, ""])
            call[2] += delta.arguments
    return [tuple(call) for _, call in sorted(calls.items())]  # type: ignore[misc]


def ask(text: str, *tools: Tool, choice: ToolChoice | None = None, parallel: bool | None = None) -> ProviderRequest:
    return ProviderRequest(
        model="sim-1",
        messages=(Message("user", text),),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )


async def test_a_tool_the_user_names_is_called_with_schema_valid_arguments_in_pieces() -> None:
    chunks = await chunks_of(ask("What is the weather? Use get_weather.", WEATHER, TIME))
    [(call_id, name, arguments)] = calls_in(chunks)
    assert name == "get_weather" and call_id is not None and call_id.startswith("call_")
    values = orjson.loads(arguments)
    assert values["city"] == "simulated city" and values["unit"] in ("celsius", "fahrenheit") and len(values) == 2
    first, *pieces = [c for c in chunks if c.tool_calls]
    assert (first.tool_calls[0].id, first.tool_calls[0].name, first.tool_calls[0].arguments) == (call_id, name, "")
    assert len(pieces) == 3 and all(p.tool_calls[0].id is None and p.tool_calls[0].name is None for p in pieces)
    assert not any(c.text for c in chunks)
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage is not None
    assert chunks == await chunks_of(ask("What is the weather? Use get_weather.", WEATHER, TIME))  # deterministic


async def test_a_spoken_name_counts_and_several_names_are_parallel_calls() -> None:
    chunks = await chunks_of(ask("get time and get weather please", WEATHER, TIME))
    assert [name for _, name, _ in calls_in(chunks)] == ["get_weather", "get_time"]  # in the order of `tools`
    assert len({call_id for call_id, _, _ in calls_in(chunks)}) == 2
    one = await chunks_of(ask("get time and get weather please", WEATHER, TIME, parallel=False))
    assert [name for _, name, _ in calls_in(one)] == ["get_weather"]


async def test_tool_choice() -> None:
    named = await chunks_of(ask("hello", WEATHER, TIME, choice=ToolChoice(mode="tool", name="get_time")))
    assert [name for _, name, _ in calls_in(named)] == ["get_time"]
    forced = await chunks_of(ask("get_time", WEATHER, TIME, choice=ToolChoice(mode="tool", name="get_weather")))
    assert [name for _, name, _ in calls_in(forced)] == ["get_weather"]
    required = await chunks_of(ask("hello", WEATHER, TIME, choice=ToolChoice(mode="required")))
    assert [name for _, name, _ in calls_in(required)] == ["get_weather"]
    none = await chunks_of(ask("use get_weather", WEATHER, choice=ToolChoice(mode="none")))
    assert calls_in(none) == [] and "".join(c.text for c in none).startswith("You said:")
    auto = await chunks_of(ask("hello", WEATHER))
    assert calls_in(auto) == [] and auto[-1].finish_reason == "stop"


async def test_after_tool_results_it_quotes_them() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city": "Paris"}'), ToolCall("call_2", "get_time", "{}"))
    request = ProviderRequest(
        model="sim-1",
        messages=(
            Message("user", "use get_weather and get_time"),
            Message("assistant", "", tool_calls=calls),
            Message("tool", '{"temperature": 21}', tool_call_id="call_1"),
            Message("tool", "12:00", tool_call_id="call_2"),
        ),
        tools=(WEATHER, TIME),
        tool_choice=ToolChoice(mode="required"),
    )
    chunks = await chunks_of(request)
    text = "".join(c.text for c in chunks)
    assert calls_in(chunks) == [] and chunks[-1].finish_reason == "stop"
    assert text.startswith('get_weather returned \u201c{"temperature": 21}\u201d. get_time returned \u201c12:00\u201d.')


# Embeddings --------------------------------------------------------------------------------------------------------


def cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_embeddings_are_deterministic_unit_vectors_closer_for_shared_words() -> None:
    provider = SimulatedProvider(pace_ms=0)
    texts = ("the sluice gate opens", "the sluice gate closes", "bananas are yellow", "", "12345")
    found = await provider.embed(EmbeddingRequest(model="sim-embed", inputs=texts))
    assert [len(v) for v in found.vectors] == [256] * 5
    assert all(abs(cosine(v, v) - 1) < 1e-4 for v in found.vectors)  # no zero vector, even without words
    assert cosine(found.vectors[0], found.vectors[1]) > cosine(found.vectors[0], found.vectors[2])
    assert found.vectors == (await provider.embed(EmbeddingRequest(model="other", inputs=texts))).vectors
    assert found.usage.input_tokens == 4 + 4 + 3 + 0 + 1
    sized = await provider.embed(EmbeddingRequest(model="sim-embed", inputs=("x",), dimensions=7))
    assert len(sized.vectors[0]) == 7
