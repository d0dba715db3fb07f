"""finalize (parse → repair → validate) and reask: the fault cases a model produces, and what each one becomes."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.providers.base import Message, ProviderRequest
from sluice.structured import SchemaViolation, finalize, reask
from sluice.structured.output import REASK_PREFIX
from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema

DEMO = compile_schema(DEMO_SCHEMA)
GOOD = {
    "reply": 'Hi {there}, "you"',
    "summary": "s",
    "sentiment": "neutral",
    "confidence": 0.5,
    "topics": ["a"],
    "action_items": [{"task": "t", "priority": "high"}],
}
TEXT = json.dumps(GOOD)


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        f"  \n{TEXT}\n",
        f"```json\n{TEXT}\n```",
        f"Sure! Here is the JSON:\n```json\n{TEXT}\n```\nAnything else {{?}}",
        f"Answer: {TEXT} -- hope that helps.",
        TEXT[:-1] + ",}",  # trailing comma
        TEXT.replace('"high"}]', '"high"},]'),  # trailing comma inside an array
        TEXT[:-1],  # the final brace missing
        TEXT[:-2],  # `]}` missing
        TEXT[:-2] + ",",  # cut after a comma
    ],
    ids=["plain", "whitespace", "fence", "prose+fence", "prose", "comma}", "comma]", "no}", "no]}", "cut,"],
)
def test_syntax_slips_are_repaired_without_a_model_call(text: str) -> None:
    assert finalize(DEMO, text) == GOOD


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (TEXT.replace('"neutral"', '"happy"'), '$.sentiment: "happy" is not allowed; use one of "positive"'),
        (json.dumps({k: v for k, v in GOOD.items() if k != "confidence"}), '$: missing required field "confidence"'),
        (json.dumps({**GOOD, "mood": 1}), '$: unexpected field "mood"'),
        (TEXT.replace('"high"', '"urgent"'), "$.action_items[0].priority"),
        (TEXT.replace("0.5", '"0.5"'), '$.confidence: "0.5" is not of type "number"'),
        (TEXT.replace('{"reply"', "{reply"), "not valid JSON"),
        (TEXT[:30], "not valid JSON"),  # cut inside a string: not closed, so not passed off as complete
        ("I cannot help with that.", "not valid JSON"),
        ("", "empty"),
    ],
    ids=["enum", "missing", "extra", "nested-enum", "type", "unquoted-key", "cut-string", "prose", "empty"],
)
def test_what_cannot_be_repaired_is_a_schema_violation_naming_path_and_problem(text: str, says: str) -> None:
    with pytest.raises(SchemaViolation) as caught:
        finalize(DEMO, text)
    assert says in caught.value.message
    assert caught.value.retryable and not caught.value.fail_fast and caught.value.code == "schema_violation"


def test_several_problems_are_all_reported() -> None:
    bad = {**GOOD, "sentiment": "meh", "confidence": "high"}
    del bad["topics"]
    with pytest.raises(SchemaViolation) as caught:
        finalize(DEMO, json.dumps(bad))
    assert len(caught.value.problems) == 3


def test_a_null_for_an_optional_field_is_dropped_not_rejected() -> None:
    # OpenAI strict mode makes optional fields nullable; the answer must still validate against the user's schema.
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert finalize(schema, '{"a": "x", "b": null}') == {"a": "x"}
    with pytest.raises(SchemaViolation):
        finalize(schema, '{"a": null, "b": 1}')  # a required field may not be null


def test_reask_keeps_the_request_and_tells_the_model_what_to_fix() -> None:
    request = ProviderRequest(
        model="m", messages=(Message("user", "hello"),), system="be brief", schema=DEMO, params={"temperature": 0}
    )
    with pytest.raises(SchemaViolation) as caught:
        finalize(DEMO, TEXT.replace('"neutral"', '"happy"'))
    again = reask(request, "bad answer", caught.value)
    assert again.model == "m" and again.system == "be brief" and again.params == {"temperature": 0}
    assert again.messages[:2] == (Message("user", "hello"), Message("assistant", "bad answer"))
    correction = again.messages[2]
    assert correction.role == "user" and correction.content.startswith(REASK_PREFIX)
    assert '$.sentiment: "happy" is not allowed' in correction.content
    assert '"enum":["positive","negative","neutral","mixed"]' in correction.content  # the schema is repeated
    assert request.messages == (Message("user", "hello"),)  # the original is untouched
    assert (request.reasks, again.reasks, reask(again, "bad", caught.value).reasks) == (0, 1, 2)  # for the simulator


def test_reask_of_a_huge_answer_is_bounded() -> None:
    request = ProviderRequest(model="m", messages=(Message("user", "hello"),))
    again = reask(request, "x" * 100_000, SchemaViolation("the answer is not valid JSON"))
    assert len(again.messages[1].content) < 9000


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet='{}[]":,\\ tfnul0123456789.-eEab\n`', max_size=60))
def test_any_text_either_validates_or_is_a_schema_violation(text: str) -> None:
    schema = compile_schema({"a": "string"})
    try:
        assert finalize(schema, text).keys() == {"a"}
    except SchemaViolation:
        pass
