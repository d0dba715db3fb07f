"""The Anthropic Messages wire format (`POST /v1/messages`).

An answer is content blocks: a `text` block with the text (when there is text, or nothing else), then one `tool_use`
block per tool call, streamed as real streams are: `content_block_start` (a `tool_use` block with `input: {}`), the
arguments in `input_json_delta` pieces, `content_block_stop`; `stop_reason` is then `tool_use`. A forced tool
(`tool_choice` `{"type": "tool"}`), or Sluice's structured-output tool `respond` under `{"type": "any"}`, answers the
text as that tool's input instead, as a model asked for structured output does.

Like the real API, the fake stops at `max_tokens` pieces of text (`stop_reason: max_tokens`) and at the first of the
request's `stop_sequences` (`stop_reason: stop_sequence`).

A script's `thinking` comes first, as a `thinking` block (index 0, the others after it): `content_block_start` with
empty `thinking` and `signature`, the text in `thinking_delta`s, then one `signature_delta` (a deterministic
stand-in for the opaque signature) just before its `content_block_stop`. `POST /v1/messages/count_tokens` answers
`{"input_tokens": n}`, `n` counted as the usage of `/v1/messages` counts it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from sluice.structured.native import TOOL_NAME
from sluice.testing.protocols.base import Answer, FakeCall, Frames, Protocol, fake_signature, sse, tokens_of


class Anthropic(Protocol):
    kind = "anthropic"
    malformed = b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {\n\n'

    def matches(self, path: str) -> bool:
        return path.endswith("/v1/messages")

    def counts(self, path: str) -> bool:
        return path.endswith("/v1/messages/count_tokens")

    def count_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"input_tokens": tokens_of(body)}

    def frames(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> Frames:
        answer, stop_reason, stop_sequence = _cut(answer, body)
        tool = None if answer.calls else answer_tool(body)
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**(answer.usage or {"input_tokens": tokens_in}), "output_tokens": 1},
            },
        }
        before = [sse(start, "message_start")]
        first = 0  # the text's block: after the thinking block, if any
        if answer.thinking:
            before += _thinking_frames(answer.thinking)
            first = 1
        middle: list[bytes] = []
        blocks = first
        if answer.pieces or not answer.calls:  # the text (or the forced tool's input) in the first block
            block = (
                {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": {}}
                if tool
                else {"type": "text", "text": ""}
            )
            before.append(_event("content_block_start", index=first, content_block=block))
            deltas = (
                {"type": "input_json_delta", "partial_json": p} if tool else {"type": "text_delta", "text": p}
                for p in answer.pieces
            )
            middle += [_event("content_block_delta", index=first, delta=d) for d in deltas]
            blocks += 1
        before.append(sse({"type": "ping"}, "ping"))
        for call in answer.calls:
            middle += _call_frames(call, blocks, close_previous=blocks > first)
            blocks += 1
        after = [_event("content_block_stop", index=first)] if not answer.calls else []
        after += [
            _event(
                "message_delta",
                delta={
                    "stop_reason": stop_reason or ("tool_use" if tool or answer.calls else "end_turn"),
                    "stop_sequence": stop_sequence,
                },
                usage=answer.usage or {"output_tokens": answer.units},
            ),
            sse({"type": "message_stop"}, "message_stop"),
        ]
        return before, middle, after

    def complete(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> dict[str, Any]:
        answer, stop_reason, stop_sequence = _cut(answer, body)
        tool = None if answer.calls else answer_tool(body)
        content: list[dict[str, Any]] = []
        if answer.thinking:
            thinking = "".join(answer.thinking)
            content.append({"type": "thinking", "thinking": thinking, "signature": fake_signature(thinking)})
        if tool:
            content.append({"type": "tool_use", "id": "toolu_fake", "name": tool, "input": _object(answer.text)})
        elif answer.pieces or not answer.calls:
            content.append({"type": "text", "text": answer.text})
        content += [
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments_object}
            for call in answer.calls
        ]
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason or ("tool_use" if tool or answer.calls else "end_turn"),
            "stop_sequence": stop_sequence,
            "usage": answer.usage or {"input_tokens": tokens_in, "output_tokens": answer.units},
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def stream_error(self) -> bytes:
        return sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")


def answer_tool(body: dict[str, Any]) -> str | None:
    """The tool whose input carries the answer's text: a forced tool, or `respond` when any tool must be used."""
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        return str(choice.get("name"))
    names = {tool.get("name") for tool in body.get("tools") or ()}
    if choice.get("type") == "any" and TOOL_NAME in names:
        return TOOL_NAME
    return None


def _event(kind: str, **fields: Any) -> bytes:
    return sse({"type": kind, **fields}, kind)


def _thinking_frames(pieces: tuple[str, ...]) -> list[bytes]:
    """Block 0, a thinking block: its opening, its text in pieces, its signature, its end."""
    signature = fake_signature("".join(pieces))
    return [
        _event("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        *(_event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": p}) for p in pieces),
        _event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": signature}),
        _event("content_block_stop", index=0),
    ]


def _call_frames(call: FakeCall, index: int, *, close_previous: bool) -> list[bytes]:
    """One frame per piece of the call's arguments; the first also opens its block, the last also closes it."""
    opening = _event(
        "content_block_start",
        index=index,
        content_block={"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
    )
    if close_previous:
        opening = _event("content_block_stop", index=index - 1) + opening
    closing = _event("content_block_stop", index=index)
    pieces = [
        _event("content_block_delta", index=index, delta={"type": "input_json_delta", "partial_json": piece})
        for piece in call.pieces
    ] or [b""]
    pieces[0] = opening + pieces[0]
    pieces[-1] += closing
    return pieces


def _cut(answer: Answer, body: dict[str, Any]) -> tuple[Answer, str | None, str | None]:
    """The answer as the request's limits leave it: (answer, stop_reason, stop_sequence), None where none struck."""
    sequences = [s for s in body.get("stop_sequences") or () if isinstance(s, str) and s]
    text = answer.text
    found = min(((text.find(s), s) for s in sequences if s in text), default=None)
    if found is not None:
        kept, cut = [], found[0]
        for piece in answer.pieces:
            if cut <= 0:
                break
            kept.append(piece[:cut])
            cut -= len(piece)
        return replace(answer, pieces=[p for p in kept if p], calls=()), "stop_sequence", found[1]
    limit = body.get("max_tokens")
    if isinstance(limit, int) and len(answer.pieces) > limit:
        return replace(answer, pieces=answer.pieces[:limit], calls=()), "max_tokens", None
    return answer, None, None


def _object(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"text": text}
