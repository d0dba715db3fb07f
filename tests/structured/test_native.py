"""Native structured-output request fields per dialect, and the schema subsets behind them."""

from typing import Any

import jsonschema_rs
import pytest

from sluice.providers.base import Message, ProviderRequest
from sluice.structured.dialects import anthropic_json, gemini, openai_strict
from sluice.structured.native import DIALECTS, prepare, request_options
from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema

DEMO = compile_schema(DEMO_SCHEMA)
LOOSE = {  # a user's full JSON Schema with an optional field, constraints strict mode rejects, and a $ref
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "reply": {"type": "string", "minLength": 1},
        "note": {"type": "string"},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": True},
        "meta": {"type": "object", "properties": {"level": {"type": "integer", "minimum": 0}}},
    },
    "required": ["reply", "tags"],
    "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
}


def objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append(node)
        for value in node.values():
            found += objects(value)
    elif isinstance(node, list):
        for value in node:
            found += objects(value)
    return found


def test_openai_gets_response_format_json_schema_strict() -> None:
    mode, extra = request_options("response_format", DEMO)
    assert mode == "native"
    fmt = extra["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "response" and fmt["json_schema"]["schema"] == DEMO  # already strict


def test_openai_strict_rewrites_a_loose_schema_to_its_rules() -> None:
    strict = openai_strict(LOOSE)
    for node in objects(strict):
        assert node["additionalProperties"] is False and node["required"] == list(node["properties"])
    props = strict["properties"]
    assert props["note"] == {"type": ["string", "null"]}  # optional → nullable
    assert props["meta"]["type"] == ["object", "null"]
    assert "minLength" not in props["reply"] and "uniqueItems" not in props["tags"] and "$schema" not in strict
    assert strict["$defs"]["tag"] == {"type": "string", "enum": ["a", "b"]}
    assert LOOSE["properties"]["note"] == {"type": "string"}  # the input is not modified
    # What the strict schema accepts from a model, the user's schema accepts after `finalize` drops the nulls.
    jsonschema_rs.validator_for(strict).validate({"reply": "x", "note": None, "tags": ["a"], "meta": None})


@pytest.mark.parametrize("rewrite", [openai_strict, anthropic_json])
def test_a_field_named_like_a_keyword_is_kept(rewrite: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"default": {"type": "string"}, "examples": {"type": "string"}, "not": {"type": "integer"}},
        "required": ["default", "examples", "not"],
    }
    assert list(rewrite(schema)["properties"]) == ["default", "examples", "not"]


def test_vllm_structured_outputs_and_guided_json() -> None:
    assert request_options("structured_outputs", DEMO) == ("native", {"structured_outputs": {"json": DEMO}})
    assert request_options("guided_json", DEMO) == ("native", {"guided_json": DEMO})


def test_anthropic_forced_tool() -> None:
    mode, extra = request_options("tool", DEMO)
    assert mode == "native"
    assert extra["tools"][0]["input_schema"] == DEMO
    assert extra["tool_choice"] == {"type": "tool", "name": extra["tools"][0]["name"]}


def test_anthropic_json_output_is_output_config_format_in_its_subset() -> None:
    mode, extra = request_options("output_format", LOOSE)
    assert mode == "native" and list(extra) == ["output_config"]
    fmt = extra["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["schema"]
    for node in objects(schema):
        assert node["additionalProperties"] is False
    assert schema["required"] == ["reply", "tags"]  # optional fields stay optional: the API caps nullable unions
    assert schema["properties"]["note"] == {"type": "string"}
    assert "minLength" not in schema["properties"]["reply"] and "minimum" not in str(schema)
    bounded = anthropic_json(
        {"type": "array", "minItems": 3, "maxItems": 5, "items": {"type": "string", "format": "colour"}}
    )
    assert bounded == {"type": "array", "minItems": 1, "items": {"type": "string"}}  # only 0 or 1; known formats


def test_gemini_response_schema_is_the_openapi_subset() -> None:
    mode, extra = request_options("response_schema", DEMO)
    config = extra["generationConfig"]
    assert mode == "native" and config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["type"] == "OBJECT" and schema["propertyOrdering"][0] == "reply"  # reply first, so it streams
    assert schema["properties"]["sentiment"] == {"type": "STRING", "enum": ["positive", "negative", "neutral", "mixed"]}
    assert schema["properties"]["action_items"]["items"]["type"] == "OBJECT"
    assert "additionalProperties" not in str(schema)


def test_gemini_conversion_of_nullables_refs_and_unions() -> None:
    converted = gemini(LOOSE)
    assert converted["properties"]["tags"]["items"] == {"type": "STRING", "enum": ["a", "b"]}  # $ref inlined
    assert converted["required"] == ["reply", "tags"] and "$defs" not in converted and "$schema" not in converted
    nullable = gemini(
        {
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "c": {"type": ["string", "null"], "enum": ["x", None]},
                "d": {"const": 3},
            },
        }
    )
    props = nullable["properties"]
    assert props["a"] == {"type": "STRING", "nullable": True}
    assert props["b"] == {"type": "INTEGER", "nullable": True}
    assert props["c"] == {"type": "STRING", "enum": ["x"], "nullable": True}
    assert props["d"] == {"type": "STRING", "enum": ["3"]}


def test_ollama_format_and_simulated() -> None:
    assert request_options("format", DEMO) == ("native", {"format": DEMO})
    assert request_options("simulated", DEMO) == ("native", {})


def test_the_prompt_dialect_appends_an_instruction_to_the_system_prompt() -> None:
    mode, extra = request_options("prompt", DEMO)
    assert mode == "prompt" and '"sentiment"' in extra["system"] and "JSON" in extra["system"]
    request = ProviderRequest(model="m", messages=(Message("user", "hi"),), system="Be kind.", schema=DEMO)
    used, prepared = prepare(request, "prompt")
    assert used == "prompt" and prepared.system.startswith("Be kind.\n\n") and extra["system"] in prepared.system
    assert prepared.extra == {}


def test_an_unknown_dialect_is_refused_not_guessed() -> None:
    with pytest.raises(LookupError, match="vllm"):
        request_options("vllm", DEMO)
    assert "prompt" in DIALECTS and "response_format" in DIALECTS


def test_prepare_merges_native_fields_into_the_request() -> None:
    request = ProviderRequest(model="m", messages=(Message("user", "hi"),), schema=DEMO)
    used, prepared = prepare(request, "format")
    assert used == "native" and prepared.extra["format"] == DEMO and prepared.system is None
    none = ProviderRequest(model="m", messages=())
    assert prepare(none, "response_format") == (None, none)
