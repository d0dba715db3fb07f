"""`JSON.stringify(JSON.parse(text))` as JavaScript computes it, for the value Python parsed from the same text.

ModelRiver's verifiers (research/modelriver.md §3.3) HMAC `JSON.stringify(req.body.data)`: not the bytes received, but
what Node re-serialises from the parsed body. Matching it byte for byte means following ECMA-262 where it differs from
orjson's compact output:

- numbers are IEEE doubles: `1.0` is `1`, `-0.0` is `0`, `1e21` is `1e+21`, `1e-7` stays `1e-7`, and an integer past
  2**53 comes back rounded (`2**60` is `1152921504606847000`);
- object keys that are array indices (`"0"`, `"17"`, below 2**32 - 1) come first, in ascending order, whatever the
  order they were sent in; the other keys keep their order;
- strings escape only `"`, `\\`, control characters (`\\b \\t \\n \\f \\r`, else `\\u00xx` in lowercase hex) and lone
  surrogates; everything else, non-ASCII included, is written as is (and hashed as UTF-8).
"""

from __future__ import annotations

import re
from typing import Any

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')
_ARRAY_INDEX_LIMIT = 2**32 - 1


def stringify(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(stringify(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{quote(key)}:{stringify(value[key])}" for key in property_order(value)) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def truthy(value: Any) -> bool:
    """JavaScript truthiness of a parsed JSON value (`if (!data)` in the verifiers): `{}` and `[]` are truthy."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0  # NaN and ±0 are falsy
    return True


def quote(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _array_index(key: str) -> int | None:
    if not key.isascii() or not key.isdigit() or (len(key) > 1 and key[0] == "0"):
        return None
    index = int(key)
    return index if index < _ARRAY_INDEX_LIMIT else None


def property_order(mapping: dict[str, Any]) -> list[str]:
    """OrdinaryOwnPropertyKeys: array indices ascending, then the other keys in insertion order."""
    indices = sorted((index, key) for key in mapping if (index := _array_index(key)) is not None)
    return [key for _, key in indices] + [key for key in mapping if _array_index(key) is None]


def number(value: float) -> str:
    """Number::toString(10) of the double nearest `value` (ints too: JavaScript parses every number as a double)."""
    try:
        x = float(value)
    except OverflowError:
        return "null"  # JSON.parse gives ±Infinity, which JSON.stringify writes as null
    if x != x or x in (float("inf"), float("-inf")):
        return "null"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, the same digits ECMA-262 asks for; only the layout differs.
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)  # digits[:point] is the integer part
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return sign + text
