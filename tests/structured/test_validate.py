"""The validator cache and its messages."""

import pytest

from sluice.structured.validate import SchemaViolation, json_path, validate, validators

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "string", "enum": ["x", "y"]}},
    "required": ["a"],
    "additionalProperties": False,
}


def test_a_schema_is_compiled_once_and_equal_schemas_share_it() -> None:
    first = validators.get(SCHEMA)
    assert validators.get(SCHEMA) is first
    assert validators.get({**SCHEMA}) is first  # an equal schema built elsewhere


def test_a_changed_schema_gets_its_own_validator() -> None:
    other = {**SCHEMA, "properties": {"a": {"type": "string"}}}
    assert validate(other, {"a": "z"}) == {"a": "z"}
    with pytest.raises(SchemaViolation):
        validate(SCHEMA, {"a": "z"})


@pytest.mark.parametrize(
    ("parts", "path"),
    [([], "$"), (["a", 0, "b"], "$.a[0].b"), (["with space"], '$["with space"]'), ([3], "$[3]")],
)
def test_json_paths(parts: list, path: str) -> None:
    assert json_path(parts) == path


def test_at_most_five_problems_are_listed() -> None:
    schema = {
        "type": "object",
        "properties": {f"f{i}": {"type": "string"} for i in range(10)},
        "required": [f"f{i}" for i in range(10)],
    }
    with pytest.raises(SchemaViolation) as caught:
        validate(schema, {})
    assert len(caught.value.problems) == 5 and caught.value.message.endswith("(and possibly more)")
