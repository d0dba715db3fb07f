"""Ollama's own API: chat (`POST /api/chat`, NDJSON) and embeddings (`POST /api/embed`).

Tool calls come whole, in one line's `message.tool_calls` (`{"function": {"index", "name", "arguments": object}}`)
after the text lines (a middle frame, where a script's faults may strike), then the `done` line with
`done_reason: stop`. A call's `id` is sent only when the script gave one (older Ollama versions give none).
"""

from __future__ import annotations

from typing import Any

import orjson

from sluice.testing.protocols.base import Answer, FakeCall, Frames, Protocol, fake_vector

DIMENSIONS = 768  # of a vector when the request asks for no `dimensions`
CREATED = "2026-01-01T00:00:00Z"


class Ollama(Protocol):
    kind = "ollama"
    content_type = "application/x-ndjson"
    malformed = b'{"model": "m", "message": {"role": "assistant", "content": \n'

    def matches(self, path: str) -> bool:
        return path == "/api/chat"

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return body.get("stream", True) is not False  # Ollama streams unless told not to

    def frames(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> Frames:
        def line(message: dict[str, Any], **extra: Any) -> bytes:
            payload = {"model": model, "created_at": CREATED, "message": {"role": "assistant", **message}, **extra}
            return orjson.dumps(payload) + b"\n"

        middle = [line({"content": piece}, done=False) for piece in answer.pieces]
        if answer.calls:
            middle.append(line({"content": "", "tool_calls": _tool_calls(answer.calls)}, done=False))
        done = line(
            {"content": ""},
            done=True,
            done_reason="stop",
            total_duration=1,
            **(answer.usage or {"prompt_eval_count": tokens_in, "eval_count": answer.units}),
        )
        return [], middle, [done]

    def complete(self, model: str, answer: Answer, tokens_in: int, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if answer.calls:
            message["tool_calls"] = _tool_calls(answer.calls)
        return {
            "model": model,
            "created_at": CREATED,
            "message": message,
            "done": True,
            "done_reason": "stop",
            **(answer.usage or {"prompt_eval_count": tokens_in, "eval_count": answer.units}),
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def stream_error(self) -> bytes:
        return orjson.dumps({"error": "an error was encountered while running the model"}) + b"\n"

    def embeds(self, path: str) -> bool:
        return path == "/api/embed"

    def embeddings(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """`{"model", "embeddings": [[…], …], "total_duration", "load_duration", "prompt_eval_count"}`, one vector
        per input (a string or a list of them), in order."""
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else list(raw or ())
        dimensions = body.get("dimensions") or DIMENSIONS
        return {
            "model": body.get("model", "fake-model"),
            "embeddings": [fake_vector(str(text), dimensions) for text in inputs],
            "total_duration": 1,
            "load_duration": 1,
            "prompt_eval_count": sum(len(str(text).split()) for text in inputs),
        }


def _tool_calls(calls: tuple[FakeCall, ...]) -> list[dict[str, Any]]:
    out = []
    for index, call in enumerate(calls):
        entry: dict[str, Any] = {"function": {"index": index, "name": call.name, "arguments": call.arguments_object}}
        if call.id != f"call_fake_{index}":  # the script named it: send it, as newer Ollama versions do
            entry = {"id": call.id, **entry}
        out.append(entry)
    return out
