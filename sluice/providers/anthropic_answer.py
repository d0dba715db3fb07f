"""Reading one streamed Anthropic Messages answer, event by event, into `Chunk`s (no I/O: the adapter feeds it).

Content blocks are told apart by their `index`: `text` blocks give text; a `tool_use` block of the structured-output
tool gives its input JSON as text; any other `tool_use` block is the next tool call (0, 1, … in answer order), its
`input_json_delta`s that call's arguments; `thinking` blocks give `ThinkingDelta`s (their `thinking_delta`s and the
`signature_delta` that ends each), a `redacted_thinking` block one with its data. Usage counts are cumulative.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluice.providers.base import Chunk, Usage
from sluice.providers.messages import ThinkingDelta, ToolCallDelta

# `stop_reason` → finish_reason in OpenAI's words (an unknown one is "stop").
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnswerReader:
    """Reads one streamed answer into `Chunk`s (the module doc says how); blocks of other types are passed over."""

    def __init__(self, structured: str | None = None) -> None:
        self.structured = structured
        self.blocks: dict[int, int | None] = {}  # tool_use block index → call index (None: the structured tool)
        self.filled: set[int] = set()  # calls whose arguments have begun
        self.calls = 0
        self.thoughts: dict[int, int] = {}  # thinking block index → its number among the answer's thinking blocks
        self.usage: dict[str, int] = {}  # the latest count of each `usage` field
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def read(self, kind: str, payload: dict[str, Any]) -> Chunk | None:
        index = payload.get("index", 0)
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta":
                text = delta.get("text") or ""
                return Chunk(text=text) if text and self.structured is None else None
            if delta.get("type") == "input_json_delta" and index in self.blocks:
                return self._arguments(self.blocks[index], delta.get("partial_json") or "")
            if index in self.thoughts:
                return self._thinking(self.thoughts[index], delta)
        elif kind == "content_block_start":
            block = payload.get("content_block") or {}
            block_type = block.get("type")
            if block_type == "tool_use":
                return self._call(index, block)
            if block_type in ("thinking", "redacted_thinking"):
                return self._thought(index, block)
        elif kind == "content_block_stop":
            call = self.blocks.get(index)
            if call is not None and call not in self.filled:  # a call without arguments: OpenAI's is "{}"
                self.filled.add(call)
                return Chunk(tool_calls=(ToolCallDelta(call, arguments="{}"),))
        elif kind == "message_start":
            self._count((payload.get("message") or {}).get("usage"))
        elif kind == "message_delta":
            self._count(payload.get("usage"))  # cumulative counts: they replace message_start's
            delta = payload.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
        elif kind == "message_stop":
            sequence = self.stop_sequence if self.stop_reason == "stop_sequence" else None
            return Chunk(usage=usage_of(self.usage), finish_reason=self.finish_reason, stop_sequence=sequence)
        return None

    def _count(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if isinstance(v, int) and v})

    @property
    def finish_reason(self) -> str:
        if self.stop_reason == "tool_use" and not self.calls:
            return "stop"  # only the structured tool was used: its input is the answer's text
        return FINISH_REASONS.get(self.stop_reason or "end_turn", "stop")

    def _call(self, index: int, block: dict[str, Any]) -> Chunk | None:
        start = block.get("input")  # `{}` when streamed; a proxy may send the whole input here
        if self.structured is not None and block.get("name") == self.structured:
            self.blocks[index] = None
            # The structured tool's input is the answer's text: a whole input sent here must not be lost.
            return Chunk(text=orjson.dumps(start).decode()) if start else None
        call = self.blocks[index] = self.calls
        self.calls += 1
        arguments = orjson.dumps(start).decode() if start else ""
        if arguments:
            self.filled.add(call)
        return Chunk(tool_calls=(ToolCallDelta(call, id=block.get("id"), name=block.get("name"), arguments=arguments),))

    def _thought(self, index: int, block: dict[str, Any]) -> Chunk | None:
        """A thinking block begins: the next thought. Its opening may already hold text (a proxy's whole block);
        a redacted block is whole here."""
        thought = self.thoughts[index] = len(self.thoughts)
        if block.get("type") == "redacted_thinking":
            return Chunk(thinking=(ThinkingDelta(thought, redacted=str(block.get("data") or "")),))
        text, signature = block.get("thinking") or "", block.get("signature") or None
        if not text and signature is None:
            return None
        return Chunk(thinking=(ThinkingDelta(thought, text=text, signature=signature),))

    def _thinking(self, thought: int, delta: dict[str, Any]) -> Chunk | None:
        if delta.get("type") == "thinking_delta" and delta.get("thinking"):
            return Chunk(thinking=(ThinkingDelta(thought, text=delta["thinking"]),))
        if delta.get("type") == "signature_delta" and delta.get("signature"):
            return Chunk(thinking=(ThinkingDelta(thought, signature=delta["signature"]),))
        return None

    def _arguments(self, call: int | None, partial: str) -> Chunk | None:
        if not partial:
            return None
        if call is None:
            return Chunk(text=partial)
        self.filled.add(call)
        return Chunk(tool_calls=(ToolCallDelta(call, arguments=partial),))


def usage_of(usage: dict[str, Any]) -> Usage:
    """Anthropic's `input_tokens` leaves out the prompt-cache tokens: the input is all three, `cached` the part read
    from the cache and `cache_write` the part written to it (billed above the input price)."""
    read = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Usage(
        input_tokens=(usage.get("input_tokens") or 0) + read + written,
        output_tokens=usage.get("output_tokens") or 0,
        cached_input_tokens=read,
        cache_write_tokens=written,
    )
