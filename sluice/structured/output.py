"""The final object of a structured answer: parse → repair → validate, and the re-ask that reports a failure.

Policy (docs/structured-outputs.md): a cheap syntax repair first (no extra model call); if the object still does not
validate, the run loop re-asks the same provider once with the validation error (`reask`); if that answer fails too,
it fails over to the next provider. The terminal `response.data` therefore always validates.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jiter
import orjson

from sluice.providers.base import Message, ProviderRequest
from sluice.structured.partial import PartialStream
from sluice.structured.repair import repair
from sluice.structured.validate import SchemaViolation, validate

__all__ = ["REASK_PREFIX", "PartialStream", "SchemaViolation", "finalize", "reask"]

REASK_PREFIX = "Your previous answer did not match the required JSON schema."
_MAX_ECHOED = 8000  # characters of the bad answer sent back to the model in a re-ask


def finalize(schema: dict[str, Any], text: str) -> Any:
    """The validated object in `text`, or `SchemaViolation` saying what is wrong and where."""
    value = parse(text, "[" if schema.get("type") == "array" else "{")
    try:
        return validate(schema, value)
    except SchemaViolation:
        # Strict-mode providers send `null` for a field the schema leaves optional (they cannot omit it); such a
        # field is dropped rather than rejected. Tried only after a failure, so valid answers pay nothing for it.
        cleaned = _drop_optional_nulls(schema, value)
        if cleaned is value:
            raise
        return validate(schema, cleaned)


def parse(text: str, opener: str = "{") -> Any:
    """JSON from a model's answer: as it is, else after `repair`; `SchemaViolation` if neither parses."""
    raw = text.encode().strip()
    try:
        return jiter.from_json(raw)
    except ValueError as exc:
        first_error = exc
    fixed = repair(raw, opener)
    if fixed is not None:
        try:
            return jiter.from_json(fixed)
        except ValueError:
            pass  # report the error in the model's own text, whose line and column the reader can find
    if not raw:
        raise SchemaViolation("the answer is empty; expected a JSON object")
    raise SchemaViolation(f"the answer is not valid JSON: {first_error}")


def reask(request: ProviderRequest, bad_text: str, violation: SchemaViolation) -> ProviderRequest:
    """`request` continued with the bad answer and a message that says what to correct (sent once per provider)."""
    shown = bad_text if len(bad_text) <= _MAX_ECHOED else bad_text[:_MAX_ECHOED] + "…"
    problems = "\n".join(f"- {problem}" for problem in violation.problems)
    correction = (
        f"{REASK_PREFIX} Problems:\n{problems}\nAnswer again with only the corrected JSON object, no other text."
    )
    if request.schema is not None:
        correction += "\nThe schema:\n" + orjson.dumps(request.schema).decode()
    messages = (*request.messages, Message("assistant", shown or "(empty answer)"), Message("user", correction))
    return replace(request, messages=messages, reasks=request.reasks + 1, gateway_turns=request.gateway_turns + 2)


def _drop_optional_nulls(schema: Any, value: Any) -> Any:
    """`value` without `null` members that the schema neither requires nor allows to be null (same object if none)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required") or ())
        changed, out = False, {}
        for key, item in value.items():
            sub = schema["properties"].get(key)
            if item is None and key not in required and sub is not None and not _allows_null(sub):
                changed = True
                continue
            new = _drop_optional_nulls(sub, item) if sub is not None else item
            changed |= new is not item
            out[key] = new
        return out if changed else value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        new_items = [_drop_optional_nulls(schema["items"], item) for item in value]
        return new_items if any(a is not b for a, b in zip(new_items, value, strict=True)) else value
    return value


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind) or None in schema.get("enum", [0]):
        return True
    return any(_allows_null(branch) for key in ("anyOf", "oneOf") for branch in schema.get(key, []))
