"""JSON Schema rewritten for the subsets providers accept natively. Pure functions; the input is never modified.

- `openai_strict`: OpenAI Structured Outputs with `strict: true` (also sent to OpenAI-compatible servers). Every object
  gets `additionalProperties: false` and lists all its properties in `required`; a property that was optional becomes
  nullable instead (the final check drops such nulls again, see `output.finalize`). Keywords strict mode rejects
  (`minLength`, `maxLength`, `patternProperties`, `if`/`then`/`else`, `not`, `dependent*`, …) are removed; the
  validator still enforces them on the final object.
- `anthropic_json`: the subset of Anthropic's JSON outputs (`output_config.format`): every object gets
  `additionalProperties: false`; optional properties stay optional (the API caps how many, and how many unions, so
  they are not made nullable as for OpenAI); numeric, length and most array constraints, and string formats it does
  not know, are removed (the validator still enforces them).
- `gemini`: the OpenAPI 3.0 subset of Gemini's `responseSchema`: upper-case `type`, `nullable` instead of a `null`
  type, string-only `enum`, local `$ref`s inlined, no `additionalProperties`; `propertyOrdering` follows the schema's
  own order so the model writes `reply` first and it can stream.
"""

from __future__ import annotations

from typing import Any

_OPENAI_DROPPED = frozenset(
    {
        "$schema",
        "$id",
        "minLength",
        "maxLength",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "if",
        "then",
        "else",
        "not",
        "dependentRequired",
        "dependentSchemas",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        "default",
        "examples",
        "contentEncoding",
        "contentMediaType",
    }
)
_ANTHROPIC_DROPPED = _OPENAI_DROPPED | {
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "maxItems",
    "unevaluatedItems",
}
_ANTHROPIC_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})  # name → schema: the names are not keywords
_GEMINI_KEPT = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def openai_strict(schema: dict[str, Any]) -> dict[str, Any]:
    return _strict(schema)


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _each(_strict, key, value) for key, value in node.items() if key not in _OPENAI_DROPPED}
    if isinstance(out.get("properties"), dict):
        required = set(node.get("required") or ())
        out["properties"] = {
            name: sub if name in required else _nullable(sub) for name, sub in out["properties"].items()
        }
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    elif out.get("type") == "object":
        out.setdefault("properties", {})
        out["required"] = []
        out["additionalProperties"] = False
    return out


def _each(rewrite: Any, key: str, value: Any) -> Any:
    """`value` of keyword `key` rewritten: a map of named subschemas entry by entry, anything else as a whole."""
    if key in _SCHEMA_MAPS and isinstance(value, dict):
        return {name: rewrite(sub) for name, sub in value.items()}
    return rewrite(value)


def anthropic_json(schema: dict[str, Any]) -> dict[str, Any]:
    return _anthropic(schema)


def _anthropic(node: Any) -> Any:
    if isinstance(node, list):
        return [_anthropic(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _each(_anthropic, key, value) for key, value in node.items() if key not in _ANTHROPIC_DROPPED}
    if isinstance(out.get("minItems"), int) and out["minItems"] > 1:
        out["minItems"] = 1  # only 0 or 1 is accepted
    if "format" in out and out["format"] not in _ANTHROPIC_FORMATS:
        del out["format"]
    if out.get("type") == "object" or isinstance(out.get("properties"), dict):
        out["additionalProperties"] = False
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return schema
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def gemini(schema: dict[str, Any]) -> dict[str, Any]:
    return _gemini(schema, schema, depth=0)


def _gemini(node: Any, root: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    if depth > 32:  # a recursive $ref: Gemini's subset has no recursion, so stop with an unconstrained value
        return {}
    if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return _gemini({**target, **{k: v for k, v in node.items() if k != "$ref"}}, root, depth + 1)
    out: dict[str, Any] = {}
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if "null" in kinds:
        out["nullable"] = True
        kinds = [k for k in kinds if k != "null"]
    if len(kinds) == 1:
        out["type"] = kinds[0].upper()
    elif len(kinds) > 1:
        return {"anyOf": [_gemini({**node, "type": k}, root, depth + 1) for k in kinds], **_only_nullable(out)}
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    if "enum" in node:
        values = [v for v in node["enum"] if v is not None]
        if None in node["enum"]:
            out["nullable"] = True
        out["type"], out["enum"] = "STRING", [v if isinstance(v, str) else str(v) for v in values]
    for key, value in node.items():
        if key in ("type", "enum", "const", "nullable") or key not in _GEMINI_KEPT:
            continue
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _gemini(sub, root, depth + 1) for name, sub in value.items()}
            out["propertyOrdering"] = list(value)
        elif key == "items":
            out["items"] = _gemini(value, root, depth + 1)
        elif key == "anyOf":
            branches = [b for b in value if not (isinstance(b, dict) and b.get("type") == "null")]
            if len(branches) < len(value):
                out["nullable"] = True
            if len(branches) == 1:
                out.update(_gemini(branches[0], root, depth + 1))
            else:
                out["anyOf"] = [_gemini(b, root, depth + 1) for b in branches]
        elif key != "propertyOrdering" or "properties" not in node:
            out[key] = value
    return out


def _only_nullable(out: dict[str, Any]) -> dict[str, Any]:
    return {"nullable": True} if out.get("nullable") else {}
