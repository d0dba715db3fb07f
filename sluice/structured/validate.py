"""Validation of the final object against the workflow's JSON Schema, with a validator compiled once per schema.

The validator is jsonschema-rs (Rust; Draft 2020-12 by default). Measured on the demo schema (bench/structured.py):
~0.5 µs to accept a valid object, ~0.4 ms to compile; fastjsonschema took ~3 µs / ~3 ms and `jsonschema` ~78 µs per
object. Compiled validators are cached by the schema object's identity (workflows keep theirs for their lifetime) and,
behind that, by a hash of the schema's canonical JSON, so equal schemas built separately share one validator.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import islice
from typing import Any

import jsonschema_rs
import orjson

from sluice.providers.errors import ProviderError

_CACHE_SIZE = 256
MAX_REPORTED = 5


class SchemaViolation(ProviderError):
    """The provider's output does not match the schema even after repair. Retryable: re-ask, then fail over.

    `problems` lists each error as `<path>: <problem>` (paths like `$.action_items[1].priority`).
    """

    code = "schema_violation"

    def __init__(self, message: str, *, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class _Validators:
    def __init__(self) -> None:
        self._by_id: OrderedDict[int, tuple[dict[str, Any], Any]] = OrderedDict()
        self._by_hash: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, schema: dict[str, Any]) -> Any:
        entry = self._by_id.get(id(schema))
        if entry is not None and entry[0] is schema:  # the same object, not a new one at a reused address
            return entry[1]
        digest = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        validator = self._by_hash.get(digest)
        if validator is None:
            validator = jsonschema_rs.validator_for(schema)
            _remember(self._by_hash, digest, validator)
        _remember(self._by_id, id(schema), (schema, validator))
        return validator


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


validators = _Validators()


def validate(schema: dict[str, Any], value: Any) -> Any:
    """`value` if it matches `schema`; else `SchemaViolation` naming the path and the problem of each error."""
    validator = validators.get(schema)
    if validator.is_valid(value):
        return value
    problems = tuple(_describe(error) for error in islice(validator.iter_errors(value), MAX_REPORTED))
    more = "" if len(problems) < MAX_REPORTED else " (and possibly more)"
    raise SchemaViolation("; ".join(problems) + more, problems=problems)


def json_path(parts: Any) -> str:
    """`["action_items", 1, "priority"]` → `$.action_items[1].priority`."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{orjson.dumps(part).decode()}]"
    return out


def _describe(error: Any) -> str:
    path, kind = json_path(error.instance_path), error.kind
    name = type(kind).__name__
    if name == "Required":
        return f"{path}: missing required field {orjson.dumps(kind.property).decode()}"
    if name == "AdditionalProperties":
        fields = ", ".join(orjson.dumps(field).decode() for field in kind.unexpected)
        return f"{path}: unexpected field {fields} (not in the schema)"
    if name == "Enum":
        allowed = ", ".join(_short(option) for option in kind.options)
        return f"{path}: {_short(error.instance)} is not allowed; use one of {allowed}"
    return f"{path}: {error.message}"


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."
