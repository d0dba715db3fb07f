"""What a fake provider does with one request: answer, fail with a status, or break the stream in a chosen way."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

_PIECE = re.compile(r"\s*\S{1,8}|\s+")


@dataclass(frozen=True)
class Script:
    """One request's behaviour. The default streams `text` successfully.

    status/body/headers/retry_after: answer with this HTTP status (>= 400: the provider's own error shape, or `body`).
    first_byte_delay: seconds before anything is sent. chunk_delay: seconds between chunks.
    cut_after: close the connection after this many text chunks (no end marker, incomplete chunked body).
    stall_after: after this many text chunks send nothing more, holding the connection open.
    malformed_at: the text chunk at this index (0-based) is sent as invalid JSON.
    error_after: after this many text chunks, the provider's in-stream error (e.g. Anthropic `overloaded_error`).
    """

    status: int = 200
    text: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    malformed_at: int | None = None
    error_after: int | None = None
    chunks: int | None = None  # split `text` into this many pieces (default: word-sized pieces)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Script:
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"unknown script keys {sorted(unknown)}; allowed: {', '.join(sorted(known))}")
        return cls(**record)

    def pieces(self, default_text: str) -> list[str]:
        text = default_text if self.text is None else self.text
        if self.chunks:
            size = max(len(text) // self.chunks, 1)
            parts = [text[i : i + size] for i in range(0, len(text), size)]
            return [*parts[: self.chunks - 1], "".join(parts[self.chunks - 1 :])] if len(parts) > self.chunks else parts
        return _PIECE.findall(text)
