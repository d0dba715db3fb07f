"""The seed article's schema shorthand, compiled to strict JSON Schema.

    reply: string                       -> {"type": "string"}
    confidence: number | integer | boolean
    sentiment: "positive | negative"    -> {"type": "string", "enum": [...]}   (bare words or quoted literals)
    topics: "array<string>"             -> {"type": "array", "items": ...}
    items: "array<{task: string, priority: 'high' | 'low'}>"
    note: "string | null"               -> nullable

Every object is strict: all fields required, no other properties. A mapping nested in YAML/JSON is an object too.
Errors name the field path and point at the column of the mistake.
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean", "null": "null"}


class ShorthandError(ValueError):
    def __init__(self, path: str, text: str, pos: int, message: str) -> None:
        self.path, self.text, self.pos, self.reason = path, text, pos, message
        pointer = f"\n    {text}\n    {' ' * pos}^" if text else ""
        super().__init__(f"{path}: {message}" + (f" (column {pos + 1})" if text else "") + pointer)


def is_json_schema(schema: dict[str, Any]) -> bool:
    """A full JSON Schema (taken as-is) rather than shorthand: it says `$schema`, or is `type: object` with keys."""
    return "$schema" in schema or (schema.get("type") == "object" and isinstance(schema.get("properties"), dict))


def compile_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Shorthand object → strict JSON Schema; a full JSON Schema is returned unchanged."""
    if not isinstance(schema, dict):
        raise ShorthandError("schema", "", 0, "must be an object mapping field names to types")
    if is_json_schema(schema):
        return schema
    return _compile_object(schema, "schema")


def _compile_object(fields: dict[str, Any], path: str) -> dict[str, Any]:
    if not fields:
        raise ShorthandError(path, "", 0, "an object needs at least one field")
    properties = {}
    for name, value in fields.items():
        field_path = f"{path}.{name}"
        if not isinstance(name, str) or not name:
            raise ShorthandError(field_path, "", 0, "field names must be non-empty strings")
        if isinstance(value, dict):
            properties[name] = _compile_object(value, field_path)
        elif isinstance(value, str):
            properties[name] = _Parser(value, field_path).parse()
        else:
            raise ShorthandError(field_path, "", 0, f"expected a type such as \"string\", got {type(value).__name__}")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


class _Parser:
    def __init__(self, text: str, path: str) -> None:
        self.text, self.path, self.pos = text, path, 0

    def fail(self, message: str, pos: int | None = None) -> ShorthandError:
        return ShorthandError(self.path, self.text, self.pos if pos is None else pos, message)

    def parse(self) -> dict[str, Any]:
        node = self.union()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return node

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"
            raise self.fail(f"expected {char!r}, found {found}")
        self.pos += 1

    def union(self) -> dict[str, Any]:
        start = self.pos
        alternatives = [self.term()]
        while self.peek() == "|":
            self.pos += 1
            alternatives.append(self.term())
        return _combine(alternatives, lambda msg: self.fail(msg, start))

    def term(self) -> tuple[str, Any]:
        char = self.peek()
        if not char:
            raise self.fail("expected a type, found the end")
        if char in "'\"":
            return ("literal", self.quoted())
        if char == "{":
            return ("schema", self.inline_object())
        start = self.pos
        word = self.word()
        if not word:
            raise self.fail(f"expected a type, found {char!r}")
        if word == "array":
            self.expect("<")
            item = self.union()
            self.expect(">")
            return ("schema", {"type": "array", "items": item})
        if word in PRIMITIVES:
            return ("schema", {"type": PRIMITIVES[word]})
        return ("word", (word, start))

    def word(self) -> str:
        self.skip()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_-."):
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        quote, start = self.text[self.pos], self.pos
        end = self.text.find(quote, start + 1)
        if end < 0:
            raise self.fail(f"unterminated {quote} literal", start)
        self.pos = end + 1
        return self.text[start + 1 : end]

    def inline_object(self) -> dict[str, Any]:
        self.expect("{")
        properties: dict[str, Any] = {}
        while True:
            key_pos = self.pos
            key = self.quoted() if self.peek() in "'\"" else self.word()
            if not key:
                raise self.fail("expected a field name", key_pos if self.peek() == "" else self.pos)
            if key in properties:
                raise self.fail(f"field {key!r} appears twice", key_pos)
            self.expect(":")
            properties[key] = self.union()
            if self.peek() == ",":
                self.pos += 1
                if self.peek() == "}":
                    break
                continue
            break
        self.expect("}")
        return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _combine(alternatives: list[tuple[str, Any]], fail: Any) -> dict[str, Any]:
    literals = [value for kind, value in alternatives if kind == "literal"]
    words = [value for kind, value in alternatives if kind == "word"]
    schemas = [value for kind, value in alternatives if kind == "schema"]
    if words and len(alternatives) == 1:
        word, _ = words[0]
        raise fail(f"unknown type {word!r}; use string, number, integer, boolean, array<…>, {{…}} or an enum a | b")
    enum = literals + [word for word, _ in words]
    if len(set(enum)) != len(enum):
        raise fail("an enum lists the same value twice")
    nullable = {"type": "null"} in schemas
    schemas = [s for s in schemas if s != {"type": "null"}]
    if enum:
        enum_schema: dict[str, Any] = {"type": "string", "enum": enum}
        if nullable:
            enum_schema = {"type": ["string", "null"], "enum": [*enum, None]}
        schemas.insert(0, enum_schema)
    elif nullable and len(schemas) == 1 and isinstance(schemas[0].get("type"), str):
        return {**schemas[0], "type": [schemas[0]["type"], "null"]}
    elif nullable:
        schemas.append({"type": "null"})
    if len(schemas) == 1:
        return schemas[0]
    return {"anyOf": schemas}
