"""What every fake's wire protocol provides (the adapters' mirror image), and the answer it is asked to give.

Each protocol knows its route, its streamed frames (already framed: SSE events or NDJSON lines), its non-streamed
body, its error body, an in-stream error and what a malformed chunk looks like; those that have embeddings also
answer them. The answer a script asks for is an `Answer`: text pieces and tool calls (each with its arguments in
pieces, so streams split them as real providers do).
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from sluice.engine.continuation import REQUEST as CONTINUE_REQUEST

# (before the answer, one frame per piece of the answer — where a script's faults strike —, after the answer)
Frames = tuple[list[bytes], list[bytes], list[bytes]]


@dataclass(frozen=True)
class FakeCall:
    """A tool call the fake answers with: its arguments whole and in the pieces it streams them in."""

    id: str
    name: str
    arguments: str
    pieces: tuple[str, ...]

    @property
    def arguments_object(self) -> Any:
        return orjson.loads(self.arguments) if self.arguments else {}


@dataclass(frozen=True)
class Answer:
    pieces: list[str]
    calls: tuple[FakeCall, ...] = ()
    thinking: tuple[str, ...] = ()  # reasoning pieces, before the text
    usage: dict[str, Any] | None = None  # the usage to report as it is (`Script.usage`), instead of the counts

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def units(self) -> int:
        """What the fake counts as output tokens: a piece of reasoning, of text or of a tool call's arguments."""
        return len(self.thinking) + len(self.pieces) + sum(len(call.pieces) for call in self.calls)


def fake_signature(thinking: str) -> str:
    """A deterministic stand-in for Anthropic's opaque thinking signature: base64, derived from the text."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest() * 2).decode()


def tokens_of(body: Any) -> int:
    """What the fake counts as input tokens: the request body's JSON length / 16 (its usage and count_tokens)."""
    return len(orjson.dumps(body)) // 16


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + payload + b"\n\n"


def fake_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`: the same input always embeds the same, different ones differ."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [((digest[i % len(digest)] + 7 * i) % 251) / 125.0 - 1.0 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


class Protocol:
    kind: ClassVar[str]
    content_type: ClassVar[str] = "text/event-stream"
    malformed: ClassVar[bytes] = b'data: {"choices": [{"delta": {"content": "oops"\n\n'

    def matches(self, path: str) -> bool:
        raise NotImplementedError

    def model(self, path: str, body: dict[str, Any]) -> str:
        return str(body.get("model", "fake-model"))

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return bool(body.get("stream"))

    def frames(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> Frames:
        raise NotImplementedError

    def complete(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    # Continuation: how a request asks to go on with an answer cut elsewhere (sluice.engine.continuation) ------------

    def turns(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """The conversation as (role, text) pairs, role `user` or `assistant` (the protocol's own names mapped)."""
        return [
            ("assistant" if message.get("role") == "assistant" else "user", _text(message.get("content")))
            for message in body.get("messages") or ()
            if isinstance(message, dict) and message.get("role") != "system"
        ]

    def continuing(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """(method, the answer so far) when the request continues an answer: `prefill` when it ends with an
        assistant turn, `instruction` when it ends with Sluice's request to go on after one; else None."""
        turns = self.turns(body)
        if turns and turns[-1][0] == "assistant":
            return "prefill", turns[-1][1]
        if len(turns) >= 2 and turns[-2][0] == "assistant" and turns[-1][1] == CONTINUE_REQUEST:
            return "instruction", turns[-2][1]
        return None

    def stream_error(self) -> bytes:
        raise NotImplementedError

    # Token counting, where the provider has it (Anthropic's count_tokens) -------------------------------------

    def counts(self, path: str) -> bool:
        """Whether `path` is this protocol's token-counting route."""
        return False

    def count_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    # Embeddings, where the provider has them ----------------------------------------------------------------

    def embeds(self, path: str) -> bool:
        """Whether `path` is this protocol's embeddings route."""
        return False

    def embeddings(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The embeddings answer to `body` (vectors from `fake_vector`)."""
        raise NotImplementedError


def _text(content: Any) -> str:
    """A message's text: a string, or the text of its blocks/parts (`text` blocks and parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
