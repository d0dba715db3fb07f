"""Hypothesis strategies for the schema shorthand: a small AST, its text, and values it accepts or rejects.

The AST is interpreted here independently of the compiler, so tests can check the compiled JSON Schema against it:

    ("string" | "number" | "integer" | "boolean",)   a primitive
    ("enum", (values…))                               an enum of strings (bare words or quoted literals)
    ("array", node)                                   array<node>
    ("object", ((key, node)…))                        {key: node, …}, strict
    ("nullable", node)                                node | null
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

PRIMITIVE_NAMES = ("string", "number", "integer", "boolean")
_RESERVED = {*PRIMITIVE_NAMES, "null", "array"}

words = st.from_regex(r"[a-z][a-z0-9_.-]{0,8}", fullmatch=True).filter(lambda w: w not in _RESERVED)
literals = st.text(st.characters(codec="utf-8", exclude_characters="'\x00"), max_size=10)
keys = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


def _enum() -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.one_of(words, literals), min_size=1, max_size=4, unique=True).map(
        lambda values: ("enum", tuple(values))
    )


def _extend(inner: st.SearchStrategy[tuple[Any, ...]]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        inner.map(lambda node: ("array", node)),
        st.lists(st.tuples(keys, inner), min_size=1, max_size=4, unique_by=lambda kv: kv[0]).map(
            lambda fields: ("object", tuple(fields))
        ),
    )


_leaf = st.one_of(st.sampled_from([(name,) for name in PRIMITIVE_NAMES]), _enum())
nodes = st.recursive(_leaf, _extend, max_leaves=8).flatmap(
    lambda node: st.sampled_from([node, ("nullable", node)]) if node[0] != "nullable" else st.just(node)
)
shorthands = st.lists(st.tuples(keys, nodes), min_size=1, max_size=5, unique_by=lambda kv: kv[0]).map(tuple)


def render(node: tuple[Any, ...], draw_space: bool = False) -> str:
    """The shorthand text of a node (bare words where they are valid, quotes where they are needed)."""
    kind = node[0]
    if kind in PRIMITIVE_NAMES:
        return kind
    if kind == "enum":
        values = node[1]
        parts = [v if len(values) > 1 and _is_word(v) else "'" + v + "'" for v in values]
        return " | ".join(parts)
    if kind == "array":
        return f"array<{render(node[1])}>"
    if kind == "object":
        return "{" + ", ".join(f"{key}: {render(sub)}" for key, sub in node[1]) + "}"
    return f"{render(node[1])} | null"


def _is_word(value: str) -> bool:
    return bool(value) and value not in _RESERVED and all(c.isalnum() or c in "_-." for c in value) and value.isascii()


def shorthand_of(fields: tuple[tuple[str, tuple[Any, ...]], ...], nest: bool) -> dict[str, Any]:
    """The top-level shorthand mapping; with `nest`, object fields become nested mappings (as YAML allows)."""
    out: dict[str, Any] = {}
    for key, node in fields:
        out[key] = shorthand_of(node[1], nest) if nest and node[0] == "object" else render(node)
    return out


def values(node: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """Values the node describes."""
    kind = node[0]
    if kind == "string":
        return st.text(max_size=8)
    if kind == "number":
        return st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False))
    if kind == "integer":
        return st.integers(-(10**12), 10**12)
    if kind == "boolean":
        return st.booleans()
    if kind == "enum":
        return st.sampled_from(node[1])
    if kind == "array":
        return st.lists(values(node[1]), max_size=3)
    if kind == "object":
        return st.fixed_dictionaries({key: values(sub) for key, sub in node[1]})
    return st.one_of(st.none(), values(node[1]))


def object_values(fields: tuple[tuple[str, tuple[Any, ...]], ...]) -> st.SearchStrategy[dict[str, Any]]:
    return values(("object", fields))  # type: ignore[return-value]


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
        words,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


def accepts(node: tuple[Any, ...], value: Any) -> bool:
    """Whether the shorthand node describes `value` (the oracle the compiled schema is checked against)."""
    kind = node[0]
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "enum":
        return isinstance(value, str) and value in node[1]
    if kind == "array":
        return isinstance(value, list) and all(accepts(node[1], item) for item in value)
    if kind == "object":
        fields = dict(node[1])
        return (
            isinstance(value, dict)
            and set(value) == set(fields)
            and all(accepts(fields[key], item) for key, item in value.items())
        )
    return value is None or accepts(node[1], value)
