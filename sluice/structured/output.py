"""Partial parsing while streaming, and validation of the final object (first version: parse only)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import jiter

from sluice.providers.base import Message, ProviderRequest
from sluice.providers.errors import ProviderError


class SchemaViolation(ProviderError):
    """The provider's output does not match the schema even after repair. Retryable: re-ask, then fail over."""

    code = "schema_violation"


class PartialStream:
    """Re-parses the accumulated JSON text and reports the object when it changed."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.buffer = bytearray()
        self.last: Any = None

    def feed(self, text: str) -> Any:
        self.buffer += text.encode()
        try:
            parsed = jiter.from_json(bytes(self.buffer), partial_mode="trailing-strings")
        except ValueError:
            return None
        if parsed == self.last or not isinstance(parsed, dict):
            return None
        self.last = parsed
        return parsed

    def flush(self) -> Any:
        """Whatever `feed` held back (coalescing); None if nothing is pending."""
        return None


def finalize(schema: dict[str, Any], text: str) -> Any:
    try:
        return jiter.from_json(text.strip().encode())
    except ValueError as exc:
        raise SchemaViolation(f"the output is not valid JSON: {exc}") from exc


def reask(request: ProviderRequest, bad_text: str, violation: SchemaViolation) -> ProviderRequest:
    correction = (
        f"Your previous answer did not match the required JSON schema: {violation.message}. "
        "Answer again with only the corrected JSON object."
    )
    messages = (*request.messages, Message("assistant", bad_text), Message("user", correction))
    return replace(request, messages=messages)
