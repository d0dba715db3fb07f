"""What a fake provider does with one request: answer, fail with a status, or break the stream in a chosen way."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
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
    cut_at: close the connection once this many characters of the text have been sent (the piece that crosses it is
    split there): a cut at an exact point (mid-word, inside a JSON string or number…).
    restate: how the fake answers a request that continues an answer by instruction (sluice.engine.continuation): it
    answers the rest of its text after the answer so far, and first restates: "none", "word" (from the start of the
    word it was cut in, or of the last whole word) or "all" (starts over, as a model that ignored the request). A
    continuation by prefill is always answered with the exact rest (a prefill the text does not start with: the
    whole text).
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
    cut_at: int | None = None
    restate: str = "none"
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
        pieces = _split(text, self.chunks) if self.chunks else _PIECE.findall(text)
        return pieces if self.cut_at is None else _split_at(pieces, self.cut_at)

    def cut_index(self, answer: Answer) -> int | None:
        """After how many text frames the stream is cut: `cut_after`, or the frames that hold `cut_at` characters."""
        if self.cut_at is None:
            return self.cut_after
        sent = 0
        for index, piece in enumerate(answer.pieces):
            sent += len(piece)
            if sent >= self.cut_at:
                return index + 1
        return len(answer.pieces)

    def continuing(self, default_text: str, method: str, delivered: str) -> Script:
        """This script answering a request that continues `delivered` (the answer so far) by `method`."""
        full = default_text if self.text is None else self.text
        if not full.startswith(delivered) or (method == "instruction" and self.restate == "all"):
            return replace(self, text=full)  # not its answer's start, or a model that starts over
        start = len(delivered)
        if method == "instruction" and self.restate == "word":
            word = delivered.rstrip().rfind(" ") + 1
            start = word if start - word >= 3 else start
        return replace(self, text=full[start:])

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


def _split_at(pieces: list[str], at: int) -> list[str]:
    """The pieces with a boundary at character `at` of their text (the piece that crosses it split in two)."""
    out, sent = [], 0
    for piece in pieces:
        if sent < at < sent + len(piece):
            out += [piece[: at - sent], piece[at - sent :]]
        else:
            out.append(piece)
        sent += len(piece)
    return out


def _split(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (fewer when it is shorter), joined back exactly."""
    size = max(len(text) // count, 1)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    return [*parts[: count - 1], "".join(parts[count - 1 :])] if len(parts) > count else parts
