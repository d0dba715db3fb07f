"""JsonScanner: where a growing JSON text stands, byte by byte."""

import pytest

from sluice.structured.scanner import KEY, NONE, SCALAR, STRING, JsonScanner


def scan(text: str, opener: str = "{") -> JsonScanner:
    scanner = JsonScanner(opener)
    scanner.feed(text.encode())
    return scanner


@pytest.mark.parametrize(
    ("text", "tail", "path"),
    [
        ('{"a": "x', STRING, ("a",)),
        ('{"a": 1', SCALAR, ("a",)),
        ('{"a": 1, "b', KEY, ("a",)),
        ('{"a": [1, {"b": "x\\"y', STRING, ("a", 1, "b")),
        ('{"a": [1, 2, 3', SCALAR, ("a", 2)),
        ('{"a": "x"', NONE, ("a",)),
        ('{"a\\"b": tr', SCALAR, ('a"b',)),
    ],
)
def test_tail_and_path(text: str, tail: str, path: tuple) -> None:
    scanner = scan(text)
    assert scanner.tail == tail and scanner.path() == path


def test_byte_by_byte_equals_all_at_once() -> None:
    text = 'x {"a": ["\\\\", "\\"}", {"b": null}], "c": 1.5e3} y'
    scanner = JsonScanner()
    for char in text:
        scanner.feed(char.encode())
        assert scanner.tail in (NONE, KEY, STRING, SCALAR)
    assert scanner.document() == scan(text).document() == text[2:-2].encode()
    assert scanner.closed


def test_closers_only_where_closing_is_all_that_is_missing() -> None:
    assert scan('{"a": [1, {"b": 2}').closers() == b"]}"
    assert scan('{"a": [1,').closers() == b"]}"
    assert scan('{"a": "unfinished').closers() is None
    assert scan('{"a":').closers() is None
    assert scan("no json here").closers() is None


def test_an_array_opener_for_array_schemas() -> None:
    assert scan("text [1, 2] more", "[").document() == b"[1, 2]"
