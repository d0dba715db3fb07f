"""The wire formats the fakes speak, one small class per provider protocol (the adapters' mirror image).

Each knows its route, its streamed frames (already framed: SSE events or NDJSON lines), its non-streamed body, its
error body, an in-stream error and what a malformed chunk looks like.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import orjson

Frames = tuple[list[bytes], list[bytes], list[bytes]]  # (before the text, one per text piece, after the text)


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + payload + b"\n\n"


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

    def frames(self, model: str, pieces: list[str], tokens_in: int, body: dict[str, Any]) -> Frames:
        raise NotImplementedError

    def complete(self, model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        raise NotImplementedError

    def error(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream_error(self) -> bytes:
        raise NotImplementedError


class OpenAI(Protocol):
    kind = "openai"

    def matches(self, path: str) -> bool:
        return path.endswith("/chat/completions")

    def frames(self, model: str, pieces: list[str], tokens_in: int, body: dict[str, Any]) -> Frames:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        usage = {"prompt_tokens": tokens_in, "completion_tokens": len(pieces), "total_tokens": tokens_in + len(pieces)}
        return (
            [chunk({"role": "assistant", "content": ""})],
            [chunk({"content": p}) for p in pieces],
            [chunk({}, "stop"), _sse({**base, "choices": [], "usage": usage}), b"data: [DONE]\n\n"],
        )

    def complete(self, model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "rate_limit_exceeded",
        }.get(status, "server_error")
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def stream_error(self) -> bytes:
        return _sse(
            {
                "error": {
                    "message": "The server had an error while processing your request.",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            }
        )


class Anthropic(Protocol):
    kind = "anthropic"
    malformed = b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {\n\n'

    def matches(self, path: str) -> bool:
        return path.endswith("/v1/messages")

    def frames(self, model: str, pieces: list[str], tokens_in: int, body: dict[str, Any]) -> Frames:
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
                "usage": {"input_tokens": tokens_in, "output_tokens": 1},
            },
        }
        # A forced tool (native structured output) answers in a `tool_use` block with `input_json_delta`s.
        tool = (
            (body.get("tool_choice") or {}).get("name")
            if (body.get("tool_choice") or {}).get("type") == "tool"
            else None
        )
        block = (
            {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": {}}
            if tool
            else {"type": "text", "text": ""}
        )
        before = [
            _sse(start, "message_start"),
            _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]
        delta = (
            {"type": "input_json_delta", "partial_json": p} if tool else {"type": "text_delta", "text": p}
            for p in pieces
        )
        text = [_sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta") for d in delta]
        after = [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(pieces)},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return before, text, after

    def complete(self, model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
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
        return _sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")


class Gemini(Protocol):
    kind = "gemini"
    malformed = b'data: {"candidates": [{"content": {"parts": [{"text": \n\n'

    def matches(self, path: str) -> bool:
        return path.startswith("/v1beta/models/") and path.endswith((":streamGenerateContent", ":generateContent"))

    def model(self, path: str, body: dict[str, Any]) -> str:
        return path.removeprefix("/v1beta/models/").rsplit(":", 1)[0]

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return path.endswith(":streamGenerateContent")

    def frames(self, model: str, pieces: list[str], tokens_in: int, body: dict[str, Any]) -> Frames:
        def chunk(text: str, finish: str | None = None) -> bytes:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            usage = {
                "promptTokenCount": tokens_in,
                "candidatesTokenCount": len(pieces),
                "totalTokenCount": tokens_in + len(pieces),
            }
            return _sse({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})

        return [], [chunk(p) for p in pieces], [chunk("", "STOP")]

    def complete(self, model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": tokens_in,
                "candidatesTokenCount": tokens_out,
                "totalTokenCount": tokens_in + tokens_out,
            },
            "modelVersion": model,
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }
        return {"error": {"code": status, "message": message, "status": kind.get(status, "UNKNOWN")}}

    def stream_error(self) -> bytes:
        return _sse(
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            }
        )


class Ollama(Protocol):
    kind = "ollama"
    content_type = "application/x-ndjson"
    malformed = b'{"model": "m", "message": {"role": "assistant", "content": \n'

    def matches(self, path: str) -> bool:
        return path == "/api/chat"

    def streams(self, path: str, body: dict[str, Any]) -> bool:
        return body.get("stream", True) is not False  # Ollama streams unless told not to

    def frames(self, model: str, pieces: list[str], tokens_in: int, body: dict[str, Any]) -> Frames:
        def line(content: str, **extra: Any) -> bytes:
            return (
                orjson.dumps(
                    {
                        "model": model,
                        "created_at": "2026-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": content},
                        **extra,
                    }
                )
                + b"\n"
            )

        done = line(
            "", done=True, done_reason="stop", total_duration=1, prompt_eval_count=tokens_in, eval_count=len(pieces)
        )
        return [], [line(p, done=False) for p in pieces], [done]

    def complete(self, model: str, text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "model": model,
            "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": text},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": tokens_in,
            "eval_count": tokens_out,
        }

    def error(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def stream_error(self) -> bytes:
        return orjson.dumps({"error": "an error was encountered while running the model"}) + b"\n"


PROTOCOLS: dict[str, type[Protocol]] = {p.kind: p for p in (OpenAI, Anthropic, Gemini, Ollama)}
