"""Cheap syntax repair of a model's JSON answer, tried only when the text does not parse as it is.

What it fixes, in order: prose or a Markdown code fence around the JSON (keep only the top-level value), trailing
commas before `}` / `]`, and missing closers at the end (`{"a": 1, "b": [2` → `{"a": 1, "b": [2]}`).

What it deliberately does not fix: a string cut in the middle (closing it would pass off a truncated answer as a
complete one), a key without a value, single quotes, comments. Those go to the re-ask, which tells the model exactly
what was wrong.
"""

from __future__ import annotations

import re

from sluice.structured.scanner import JsonScanner

# A JSON string (skipped as a whole) or a comma followed only by whitespace and a closer (removed).
_TRAILING_COMMA = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|,(?=\s*[}\]])', re.DOTALL)  # unrolled: linear, fast


def repair(text: bytes, opener: str = "{") -> bytes | None:
    """A repaired candidate for `text`, or None when nothing cheap applies."""
    scanner = JsonScanner(opener)
    scanner.feed(text)
    if scanner.start is None:
        return None
    document = scanner.document()
    if not scanner.closed:
        closers = scanner.closers()
        if closers is None:
            return None
        document = document.rstrip()
        if document.endswith(b"```"):  # a fence after an unclosed object is not part of it
            document = document[:-3].rstrip()
        document = document[:-1] if document.endswith(b",") else document
        document += closers
    return _TRAILING_COMMA.sub(lambda m: m.group(0) if m.group(0) != b"," else b"", document)
