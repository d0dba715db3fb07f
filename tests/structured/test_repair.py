"""repair: the cheap fixes, and the cases it refuses."""

import pytest

from sluice.structured.repair import repair


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ('```json\n{"a": 1}\n```', b'{"a": 1}'),
        ('Here: {"a": "}"} bye {x}', b'{"a": "}"}'),
        ('{"a": [1, 2,], "b": "x,]",}', b'{"a": [1, 2], "b": "x,]"}'),  # commas inside strings are kept
        ('{"a": [1, 2', b'{"a": [1, 2]}'),
        ('{"a": {"b": true}, ', b'{"a": {"b": true}}'),
    ],
)
def test_fixes(text: str, fixed: bytes) -> None:
    assert repair(text.encode()) == fixed


@pytest.mark.parametrize("text", ['{"a": "cut in the mid', '{"a": ', "no object at all", ""])
def test_refuses_what_it_cannot_fix_honestly(text: str) -> None:
    assert repair(text.encode()) is None


def test_a_closing_fence_after_an_unclosed_object_is_dropped() -> None:
    assert repair(b'```json\n{"a": [1, 2],\n```') == b'{"a": [1, 2]}'
