"""The simulated provider: honours any schema, streams in tokens, and misbehaves on cue for the repair paths."""

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings

from sluice.providers.base import Message, ProviderRequest
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
    request = ProviderRequest(model=model, messages=messages or (Message("user", text),), schema=schema, reasks=reasks)
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
