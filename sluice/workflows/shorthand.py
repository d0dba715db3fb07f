"""The seed article's schema shorthand, compiled to strict JSON Schema.

    reply: string                       -> {"type": "string"}
    confidence: number | integer | boolean
    sentiment: "positive | negative"    -> {"type": "string", "enum": [...]}   (bare words or quoted literals)
    topics: "array<string>"             -> {"type": "array", "items": ...}
    items: "array<{task: string, priority: 'high' | 'low'}>"
    note: "string | null"               -> nullable

Grammar (whitespace is free between tokens):

    type    := term ("|" term)*              alternatives: literals/words form one enum, types an anyOf
    term    := "string" | "number" | "integer" | "boolean" | "null"
             | "array" "<" type ">" | "{" field ("," field)* [","] "}"
             | quoted literal ('…' or "…") | bare word (an enum value: letters, digits, _ - .)
    field   := (word | quoted) ":" type

Every object is strict: all fields required, no other properties. A mapping nested in YAML/JSON is an object too.
Errors name the field path (`schema.action_items[].priority`) and point at the column of the mistake.
"""

from __future__ import annotations

import difflib
from typing import Any

PRIMITIVES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean", "null": "null"}
_TYPE_WORDS = [*PRIMITIVES, "array"]
_TYPE_HINT = "use string, number, integer, boolean, null, array<…>, {…} or an enum such as 'a | b'"


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


def _compile_object(fields: dict[Any, Any], path: str) -> dict[str, Any]:
    if not fields:
        raise ShorthandError(path, "", 0, "an object needs at least one field")
    properties: dict[str, Any] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not name.strip():
            raise ShorthandError(f"{path}.{name}", "", 0, "field names must be non-empty strings")
        field_path = f"{path}.{name}"
        if isinstance(value, dict):
            properties[name] = _compile_object(value, field_path)
        elif isinstance(value, str):
            properties[name] = _Parser(value, field_path).parse()
        else:
            raise ShorthandError(field_path, "", 0, _not_a_type(value))
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _not_a_type(value: Any) -> str:
    if value is None:
        return 'no type given; write one such as "string"'
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return f'a list is not a type; for a list of {value[0]} write "array<{value[0]}>"'
    return f'expected a type such as "string", got {type(value).__name__} {value!r}'


def _suggest(word: str) -> str:
    close = difflib.get_close_matches(word.lower(), _TYPE_WORDS, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; {_TYPE_HINT}"


class _Parser:
    """Recursive descent over one shorthand string; `trail` extends the field path inside inline objects."""

    def __init__(self, text: str, path: str) -> None:
        self.text, self.path, self.pos = text, path, 0
        self.trail: list[str] = []

    def fail(self, message: str, pos: int | None = None) -> ShorthandError:
        return ShorthandError(self.path + "".join(self.trail), self.text, self.pos if pos is None else pos, message)

    def parse(self) -> dict[str, Any]:
        node = self.union()
        self.skip()
        if self.pos != len(self.text):
            char = self.text[self.pos]
            hint = " (a '|' between alternatives?)" if char.isalnum() or char in "'\"" else ""
            raise self.fail(f"unexpected {char!r} after a complete type{hint}")
        return node

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def found(self) -> str:
        return repr(self.text[self.pos]) if self.pos < len(self.text) else "the end"

    def expect(self, char: str, what: str = "") -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}{what}, found {self.found()}")
        self.pos += 1

    def union(self) -> dict[str, Any]:
        alternatives = [self.term()]
        while self.peek() == "|":
            self.pos += 1
            alternatives.append(self.term())
        return self.combine(alternatives)

    def term(self) -> tuple[str, Any, int]:
        char = self.peek()
        start = self.pos
        if not char:
            raise self.fail("expected a type, found the end")
        if char in "'\"":
            return ("literal", self.quoted(), start)
        if char == "{":
            return ("schema", self.inline_object(), start)
        word = self.word()
        if not word:
            raise self.fail(f"expected a type, found {char!r}")
        if word == "array":
            if self.peek() != "<":
                raise self.fail(f"array needs an item type, as in array<string>; found {self.found()}")
            self.pos += 1
            self.trail.append("[]")
            item = self.union()
            self.trail.pop()
            self.expect(">", " to close array<")
            return ("schema", {"type": "array", "items": item}, start)
        if word in PRIMITIVES:
            return ("schema", {"type": PRIMITIVES[word]}, start)
        if self.peek() == "<":
            spelled = "; write it in lower case: array<…>" if word.lower() == "array" else ""
            raise self.fail(f"unknown type {word!r}; only array<…> takes an item type{spelled}", start)
        return ("word", word, start)

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
            raise self.fail(f"unterminated {quote} literal: add the closing {quote}", start)
        self.pos = end + 1
        return self.text[start + 1 : end]

    def inline_object(self) -> dict[str, Any]:
        opened = self.pos
        self.expect("{")
        if self.peek() == "}":
            raise self.fail("an object needs at least one field", opened)
        properties: dict[str, Any] = {}
        while True:
            self.skip()
            key_pos = self.pos
            key = self.quoted() if self.peek() and self.peek() in "'\"" else self.word()
            if not key:
                raise self.fail(f"expected a field name, found {self.found()}")
            if key in properties:
                raise self.fail(f"field {key!r} appears twice", key_pos)
            self.expect(":", f" after the field name {key!r}")
            self.trail.append(f".{key}")
            properties[key] = self.union()
            self.trail.pop()
            if self.peek() == ",":
                self.pos += 1
                if self.peek() == "}":
                    break
                continue
            if self.peek() != "}":
                raise self.fail(f"expected ',' or '}}' after the type of {key!r}, found {self.found()}")
            break
        self.expect("}")
        return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}

    def combine(self, alternatives: list[tuple[str, Any, int]]) -> dict[str, Any]:
        """Literals and bare words become one string enum; types become an anyOf; `null` makes it nullable."""
        if len(alternatives) == 1 and alternatives[0][0] == "word":
            _, word, start = alternatives[0]
            following = self.peek()
            if following and (following.isalnum() or following in "'\""):
                raise self.fail("enum values must be separated by '|', as in 'a | b'", self.pos)
            raise self.fail(f"unknown type {word!r}{_suggest(word)}", start)
        enum: list[str] = []
        schemas: list[dict[str, Any]] = []
        for kind, value, start in alternatives:
            if kind == "schema":
                if value in schemas:
                    raise self.fail(f"the type {value.get('type', 'object')!r} is listed twice", start)
                schemas.append(value)
            elif value in enum:
                raise self.fail(f"the enum lists {value!r} twice", start)
            else:
                enum.append(value)
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
