"""The shorthand compiler: what it accepts (property-based, against an independent oracle) and where errors point."""

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import ShorthandError, compile_schema
from tests.workflows.strategies import accepts, json_values, object_values, shorthand_of, shorthands

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutations(fields: tuple, value: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Near misses of a valid object: a field dropped, a field added, or one field's value replaced."""
    names = [key for key, _ in fields]
    return st.one_of(
        st.sampled_from(names).map(lambda key: {k: v for k, v in value.items() if k != key}),
        json_values.map(lambda extra: {**value, "zz_extra": extra}),
        st.tuples(st.sampled_from(names), json_values).map(lambda kv: {**value, kv[0]: kv[1]}),
    )


@FAST
@given(fields=shorthands, nest=st.booleans(), data=st.data())
def test_compiled_schema_accepts_exactly_what_the_shorthand_describes(fields: tuple, nest: bool, data: Any) -> None:
    schema = compile_schema(shorthand_of(fields, nest))
    validator = jsonschema_rs.validator_for(schema)
    valid = data.draw(object_values(fields), label="valid")
    assert validator.is_valid(valid), (schema, valid)
    for _ in range(3):
        candidate = data.draw(st.one_of(mutations(fields, valid), json_values), label="candidate")
        assert validator.is_valid(candidate) == accepts(("object", fields), candidate), (schema, candidate)


@FAST
@given(fields=shorthands)
def test_compiled_objects_are_strict(fields: tuple) -> None:
    def check(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or node.get("type") == ["object", "null"]:
                assert node["additionalProperties"] is False
                assert node["required"] == list(node["properties"])
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for value in node:
                check(value)

    check(compile_schema(shorthand_of(fields, nest=False)))


def test_the_seed_schema_compiles_to_strict_json_schema() -> None:
    schema = compile_schema(DEMO_SCHEMA)
    assert schema["required"] == list(DEMO_SCHEMA) and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["sentiment"] == {"type": "string", "enum": ["positive", "negative", "neutral", "mixed"]}
    assert props["confidence"] == {"type": "number"}
    assert props["topics"] == {"type": "array", "items": {"type": "string"}}
    item = props["action_items"]["items"]
    assert item["properties"]["priority"] == {"type": "string", "enum": ["high", "medium", "low"]}
    assert item["required"] == ["task", "priority"] and item["additionalProperties"] is False


def test_nullable_and_unions() -> None:
    props = compile_schema({"a": "string | null", "b": "x | y | null", "c": "string | number", "d": "'it is' | \"x\""})[
        "properties"
    ]
    assert props["a"] == {"type": ["string", "null"]}
    assert props["b"] == {"type": ["string", "null"], "enum": ["x", "y", None]}
    assert props["c"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert props["d"] == {"type": "string", "enum": ["it is", "x"]}


def test_full_json_schema_is_taken_as_is() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}}
    assert compile_schema(schema) is schema


@pytest.mark.parametrize(
    ("shorthand", "path", "column", "says"),
    [
        ({"a": "array<string"}, "schema.a", 13, "expected '>' to close array<"),
        ({"a": "strin"}, "schema.a", 1, "did you mean 'string'?"),
        ({"a": "positive | negative |"}, "schema.a", 22, "expected a type, found the end"),
        ({"a": "{task string}"}, "schema.a", 7, "expected ':' after the field name 'task'"),
        ({"a": "a | b | a"}, "schema.a", 9, "the enum lists 'a' twice"),
        ({"a": "array<{task: strin}>"}, "schema.a[].task", 14, "did you mean 'string'?"),
        ({"items": "array<{task: string, priority: 'high' | 'low'>"}, "schema.items[]", 46, "expected ',' or '}'"),
        ({"a": "{a: string b: number}"}, "schema.a", 12, "expected ',' or '}' after the type of 'a'"),
        ({"a": "positive negative"}, "schema.a", 10, "separated by '|'"),
        ({"a": "Array<string>"}, "schema.a", 1, "lower case"),
        ({"a": "array"}, "schema.a", 6, "array needs an item type"),
        ({"a": "{}"}, "schema.a", 1, "at least one field"),
        ({"a": "'unclosed | b"}, "schema.a", 1, "unterminated ' literal"),
        ({"a": "string | string"}, "schema.a", 10, "listed twice"),
        ({"outer": {"inner": {"c": "nmber"}}}, "schema.outer.inner.c", 1, "did you mean 'number'?"),
    ],
)
def test_errors_point_at_the_exact_spot(shorthand: dict, path: str, column: int, says: str) -> None:
    with pytest.raises(ShorthandError) as caught:
        compile_schema(shorthand)
    error = caught.value
    assert error.path == path
    assert error.pos + 1 == column, str(error)
    assert says in error.reason
    caret_line = str(error).splitlines()[-1]
    assert caret_line.index("^") - 4 == error.pos  # the caret sits under the offending character


@pytest.mark.parametrize(
    ("shorthand", "says"),
    [
        ({"a": None}, "no type given"),
        ({"a": ["string"]}, 'write "array<string>"'),
        ({"a": 5}, "got int"),
        ({}, "at least one field"),
        ({"": "string"}, "non-empty"),
    ],
)
def test_errors_for_values_that_are_not_type_strings(shorthand: dict, says: str) -> None:
    with pytest.raises(ShorthandError, match=says.replace("[", r"\[")):
        compile_schema(shorthand)
