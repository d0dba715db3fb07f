"""`JSON.stringify` as Node computes it (tests/compat checks the same against Node itself)."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.delivery.jsjson import number, stringify, truthy


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123.456, "123.456"),
        (2**60, "1152921504606847000"),
        (2**53 + 1, "9007199254740992"),
        (-42, "-42"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (10**400, "null"),
    ],
)
def test_numbers_are_doubles(value: float, expected: str) -> None:
    assert number(value) == expected


def test_index_keys_come_first_then_insertion_order() -> None:
    value = {"b": 1, "10": 2, "2": 3, "02": 4, "-1": 5, "4294967295": 6, "4294967294": 7, "a": 8}
    assert stringify(value) == '{"2":3,"10":2,"4294967294":7,"b":1,"02":4,"-1":5,"4294967295":6,"a":8}'


def test_strings_escape_only_what_javascript_escapes() -> None:
    text = 'é😀\u2028/"\\\b\t\n\f\r\u0001\u001f\u007f'
    assert stringify(text) == '"é😀\u2028/\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u007f"'
    assert stringify("\ud800") == '"\\ud800"'  # a lone surrogate


def test_containers_are_compact() -> None:
    assert stringify({"a": [1, None, True, False, {}], "b": []}) == '{"a":[1,null,true,false,{}],"b":[]}'
    with pytest.raises(TypeError):
        stringify({"a": object()})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        (True, True),
        ({}, True),
        ([], True),
        ("0", True),
        (1, True),
    ],
)
def test_truthiness(value: Any, expected: bool) -> None:
    assert truthy(value) is expected
