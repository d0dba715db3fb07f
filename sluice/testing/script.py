"""What a fake provider does with one request: answer, fail with a status, or break the stream in a chosen way."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from sluice.testing.protocols.base import Answer, FakeCall

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
    tool_calls: the answer calls these tools, after its text (none unless `text` is given): each
    `{"name", "arguments": object or JSON text, "id"?}`; streamed with each call's arguments in `argument_chunks`
    pieces (the chunk counts of the faults above count these pieces too).
    thinking: the answer begins with this reasoning (Anthropic: a signed `thinking` block before the text;
    OpenAI-shaped: `reasoning_content` deltas, as compatible servers send them; the faults above do not count it).
    usage: the usage object to report as it is, in the provider's own shape (OpenAI's `usage`, Anthropic's `usage`
    — on `message_start`, with `output_tokens: 1`, and whole on `message_delta` —, Gemini's `usageMetadata`, Ollama's
    `prompt_eval_count`/`eval_count`), e.g. one copied from the provider's documentation; default: counted.
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
    tool_calls: tuple[dict[str, Any], ...] = ()
    argument_chunks: int = 3
    thinking: str | None = None
    usage: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Script:
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"unknown script keys {sorted(unknown)}; allowed: {', '.join(sorted(known))}")
        return cls(**record)

    def pieces(self, default_text: str) -> list[str]:
        text = ("" if self.tool_calls else default_text) if self.text is None else self.text
        if self.chunks:
            return _split(text, self.chunks)
        return _PIECE.findall(text)

    def answer(self, default_text: str) -> Answer:
        """What the fake answers: reasoning pieces, text pieces, then the tool calls."""
        calls = []
        for index, call in enumerate(self.tool_calls):
            raw = call.get("arguments", {})
            arguments = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
            calls.append(FakeCall(id=call.get("id") or f"call_fake_{index}", name=call["name"], arguments=arguments,
                                  pieces=tuple(_split(arguments, self.argument_chunks))))  # fmt: skip
        thinking = tuple(_PIECE.findall(self.thinking)) if self.thinking else ()
        return Answer(pieces=self.pieces(default_text), calls=tuple(calls), thinking=thinking, usage=self.usage)


def _split(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (fewer when it is shorter), joined back exactly."""
    size = max(len(text) // count, 1)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [*parts[: count - 1], "".join(parts[count - 1 :])] if len(parts) > count else parts
