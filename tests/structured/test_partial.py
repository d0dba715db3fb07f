"""PartialStream: the object so far while JSON streams in — consistent with the final object, coalesced."""

import itertools
import json
from typing import Any

import jiter
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.structured import PartialStream
from sluice.workflows.loader import DEMO_SCHEMA
from sluice.workflows.shorthand import compile_schema
from tests.workflows.strategies import object_values, shorthand_of, shorthands

DEMO = compile_schema(DEMO_SCHEMA)
FINAL = {
    "reply": 'He said "hi" \\ caf\u00e9 \U0001f600 done',
    "summary": "short",
    "sentiment": "positive",
    "confidence": 0.875,
    "topics": ["alpha", "beta"],
    "action_items": [{"task": "call back", "priority": "medium"}, {"task": "write", "priority": "low"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def consistent(partial: Any, final: Any, schema: dict[str, Any]) -> bool:
    """`partial` could still become `final`: free strings are prefixes, everything else is already exact."""
    if isinstance(final, dict):
        props = schema.get("properties", {})
        return isinstance(partial, dict) and all(
            key in final and consistent(value, final[key], _branch(props.get(key, {}), final[key]))
            for key, value in partial.items()
        )
    if isinstance(final, list):
        items = schema.get("items", {})
        return (
            isinstance(partial, list)
            and len(partial) <= len(final)
            and all(consistent(p, f, _branch(items, f)) for p, f in zip(partial, final, strict=False))
        )
    if isinstance(final, str) and "enum" not in schema:
        return isinstance(partial, str) and final.startswith(partial)
    return partial == final and type(partial) is type(final)


def _branch(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """The anyOf branch that describes `value` (enough for shorthand schemas: an enum or a plain type)."""
    for branch in schema.get("anyOf", []):
        if "enum" in branch and value in branch["enum"]:
            return branch
        if "enum" not in branch and branch.get("type") not in (None, "null"):
            return branch
    return schema


def feed_all(stream: PartialStream, text: str, cuts: list[int]) -> list[Any]:
    emitted, start = [], 0
    for cut in [*sorted(set(cuts)), len(text)]:
        if cut > start:
            if (update := stream.feed(text[start:cut])) is not None:
                emitted.append(update)
            start = cut
    if (pending := stream.flush()) is not None:
        emitted.append(pending)
    return emitted


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=shorthands, data=st.data(), ascii_only=st.booleans(), indent=st.sampled_from([None, 2]))
def test_every_prefix_yields_an_object_consistent_with_the_final_one(
    fields: tuple,
    data: Any,
    ascii_only: bool,
    indent: int | None,
) -> None:
    schema = compile_schema(shorthand_of(fields, nest=False))
    final = data.draw(object_values(fields))
    text = json.dumps(final, ensure_ascii=ascii_only, indent=indent)
    stream = PartialStream(schema, interval=0)
    previous: Any = None
    for end in range(1, len(text) + 1):
        stream.feed(text[end - 1])
        current = stream.current()
        if current is None:
            continue
        assert consistent(current, final, schema), (text[:end], current)
        if previous is not None:  # and the object only grows
            assert consistent(previous, current, schema) or consistent(previous, final, schema)
        previous = current
    assert stream.current() == final


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=40), noise=st.sampled_from(["", "Sure! ```json\n"]))
def test_random_chunking_emits_only_consistent_objects_and_ends_with_the_final(cuts: list[int], noise: str) -> None:
    text = noise + json.dumps(FINAL) + ("\n```" if noise else "")
    emitted = feed_all(PartialStream(DEMO, interval=0), text, cuts)
    assert emitted and emitted[-1] == FINAL
    assert all(consistent(obj, FINAL, DEMO) for obj in emitted)


def test_reply_grows_token_by_token_but_enums_and_numbers_appear_only_when_complete() -> None:
    text = json.dumps(FINAL, ensure_ascii=True)
    stream = PartialStream(DEMO, interval=0)
    seen_sentiments, seen_confidences, replies = set(), set(), []
    for char in text:
        update = stream.feed(char)
        if update is None:
            continue
        replies.append(update.get("reply"))
        if "sentiment" in update:
            seen_sentiments.add(update["sentiment"])
        if "confidence" in update:
            seen_confidences.add(update["confidence"])
        for item in update.get("action_items", []):
            assert item.get("priority") in (None, "medium", "low")
    assert seen_sentiments == {"positive"}
    assert seen_confidences == {0.875}
    growing = [r for r in replies if r is not None and r != FINAL["reply"]]
    assert len(growing) > 10 and all(a != b and b.startswith(a) for a, b in itertools.pairwise(growing))


def test_a_truncated_number_is_held_back() -> None:
    stream = PartialStream(compile_schema({"a": "number", "b": "string"}), interval=0)
    assert stream.feed('{"a": 12') is None  # `12` may be the start of `123`
    assert stream.feed("3") is None
    assert stream.feed(', "b": "x') == {"a": 123, "b": "x"}


def test_coalescing_holds_fast_tokens_back_and_flush_returns_them() -> None:
    clock = Clock()
    stream = PartialStream(DEMO, interval=0.040, max_bytes=10_000, clock=clock)
    assert stream.feed('{"reply": "a') == {"reply": "a"}  # the first change goes out at once
    assert stream.feed("b") is None  # 0 ms later: held
    clock.now = 0.039
    assert stream.feed("c") is None
    clock.now = 0.040
    assert stream.feed("d") == {"reply": "abcd"}  # the interval passed: everything held is in this one
    assert stream.feed("e") is None
    assert stream.flush() == {"reply": "abcde"}
    assert stream.flush() is None


def test_a_burst_is_cut_every_max_bytes() -> None:
    stream = PartialStream(DEMO, interval=10.0, max_bytes=64, clock=Clock())
    text = json.dumps({**FINAL, "reply": "x" * 1000})
    emitted = [u for i in range(0, len(text), 4) if (u := stream.feed(text[i : i + 4])) is not None]
    assert 14 <= len(emitted) <= len(text) // 64 + 1


def test_a_fast_stream_emits_far_fewer_partials_than_tokens() -> None:
    clock = Clock()
    stream = PartialStream(DEMO, clock=clock)
    text = json.dumps({**FINAL, "reply": "word " * 400})
    tokens = [text[i : i + 4] for i in range(0, len(text), 4)]
    emitted = 0
    for token in tokens:
        clock.now += 0.002  # 500 tokens/s
        emitted += stream.feed(token) is not None
    emitted += stream.flush() is not None
    assert emitted <= len(tokens) * 0.002 / 0.040 + 2  # at most one per 40 ms
    assert emitted >= 10  # but the reply still visibly grows


def test_text_before_the_json_is_ignored_and_non_objects_are_not_emitted() -> None:
    stream = PartialStream(DEMO, interval=0)
    assert stream.feed("Here you go: ") is None
    assert stream.feed("{") is None  # `{}` says nothing yet
    assert stream.feed('"reply": "hi"}') == {"reply": "hi"}
    assert stream.feed(' trailing words {"no": 1}') is None


@pytest.mark.parametrize("escape", ["\\u00e9", "\\ud83d\\ude00", '\\"', "\\n"])
def test_an_unfinished_escape_never_shows_half_a_character(escape: str) -> None:
    schema = compile_schema({"reply": "string"})
    text = '{"reply": "ab' + escape + 'cd"}'
    stream = PartialStream(schema, interval=0)
    final = jiter.from_json(text.encode())["reply"]
    for char in text:
        stream.feed(char)
        current = stream.current()
        if current and "reply" in current:
            assert final.startswith(current["reply"])


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.text(alphabet='{}[]":,\\ tfnul0123456789.-eEab\n`', max_size=12), max_size=20))
def test_garbage_never_raises(chunks: list[str]) -> None:
    stream = PartialStream(DEMO, interval=0)
    for chunk in chunks:
        stream.feed(chunk)
    stream.flush()
